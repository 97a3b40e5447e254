"""The hybrid multi-task model: collaborative ids + content towers, trained on "predict what comes next".

A training example is a user and a cut in their time-ordered training history: the events before the cut
are the input (recency-weighted, the items themselves masked out of the ranking), the next
``target_window`` events are the targets. Losses: an implicit ranking loss (full softmax over the
catalogue, sampled softmax or BPR, ``ranking_weight``) plus rating regression on the targets' values
(``rating_weight``; skipped when the values do not vary). Item ids are dropped at random (``id_dropout``) so
the content path learns to stand alone: items never seen in training (cold) are scored from content only and
are kept out of the softmax, so training never pushes them down. Explicit negatives (``events`` role negative,
e.g. MIND skips) of the same time window as an example's targets add an impression-aware pairwise term
(``negative_weight``): each target is pushed above each negative.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genre_core.models.base import histories_to_csr
from genre_core.models.config import HybridConfig
from genre_core.models.data import COLD_GEN_MODALITY, LLM_USER_MODALITY, TrainData
from genre_core.models.hybrid_net import HybridNet
from genre_core.models.negatives import pairwise_negative_loss
from genre_core.models.net_model import NetRecommender, _norm_rows
from genre_core.models.registry import MODELS


def _norm_like(v: np.ndarray, mask: np.ndarray, ref: np.ndarray, ref_mask: np.ndarray) -> np.ndarray:
    """Rows of ``v`` [U, d] centred on the catalogue mean of ``ref`` [N, d] (as ``_norm_rows`` centres the item
    vectors of that modality) and L2-normalised; rows outside ``mask`` are zero."""
    v = v - ref[ref_mask].mean(axis=0, keepdims=True) if ref_mask.any() else v
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
    v[~mask] = 0.0
    return v.astype(np.float32)


def _cold_gen_modality(data: TrainData, modalities: list[str]) -> str:
    """The item modality whose tower projects the cold-user generator's vectors ("text"); ValueError when the
    vectors or that modality are missing or their sizes disagree."""
    if COLD_GEN_MODALITY not in data.user_features:
        raise ValueError("train.hybrid.use_cold_gen is on but no user 'cold_gen' vectors are stored; run "
                         "`genre enrich` with 'cold_gen' in llm.roles first")
    if "text" not in modalities:
        raise ValueError(f"train.hybrid.use_cold_gen needs the 'text' item modality (the generated descriptions are "
                         f"embedded with features.text); the hybrid uses {modalities}")
    d_gen, d_text = data.user_features[COLD_GEN_MODALITY].shape[1], data.item_features["text"].shape[1]
    if d_gen != d_text:
        raise ValueError(f"user_features 'cold_gen' vectors have {d_gen} dims but item 'text' vectors {d_text}: "
                         "re-run `genre enrich` after changing features.text.model")
    return "text"


@MODELS.register("hybrid")
class Hybrid(NetRecommender):
    scores_cold_items = True  # items unseen in training are scored from their content vectors
    Config = HybridConfig
    tune_space = {  # default search space of `genre tune` (ranges bracket the shipped defaults)
        "dim": {"type": "categorical", "choices": [32, 64, 128]},
        "lr": {"type": "float", "low": 0.0003, "high": 0.01, "log": True},
        "weight_decay": {"type": "float", "low": 1e-06, "high": 0.01, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "id_dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "recency_half_life": {"type": "float", "low": 1.0, "high": 50.0, "log": True},
        "fusion": {"type": "categorical", "choices": ["sum", "concat", "gated"]},
        "history": {"type": "categorical", "choices": ["mean", "attention"]},
        "target_window": {"type": "int", "low": 1, "high": 10},
        "cuts_per_user": {"type": "int", "low": 2, "high": 8},
    }
    config: HybridConfig

    def __init__(self, idmap, config: HybridConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.net: HybridNet | None = None
        self.user_modalities: list[str] = []
        self.gen_modality: str | None = None  # item modality whose tower projects the cold_gen vectors
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._rate = False  # whether the rating head is trained (set in _setup / load_state)

    def _build(self, item_dims: dict[str, int], user_dims: dict[str, int]) -> HybridNet:
        return HybridNet(self.idmap.n_users, self.idmap.n_items, item_dims, user_dims, self.config.dim,
                         self.config.fusion, self.config.history, self.config.user_embedding,
                         max_history=self.config.max_history, half_life=self.config.recency_half_life,
                         learn_recency=self.config.learn_recency, gen_modality=self.gen_modality)

    # -- setup ------------------------------------------------------------------------------------------------
    def _setup(self, data: TrainData, gen: torch.Generator) -> None:
        use_llm = self.config.use_llm_features
        llm_items = use_llm or (self.config.modalities is None and self.config.use_llm_text)
        self.modalities = data.modalities(self.config.modalities, use_llm=llm_items)
        profiles = use_llm or self.config.use_profiles
        self.user_modalities = [LLM_USER_MODALITY] if profiles and LLM_USER_MODALITY in data.user_features else []
        if profiles and not self.user_modalities:
            switch = "use_llm_features" if use_llm else "use_profiles"
            raise ValueError(f"train.hybrid.{switch} is on but no user 'profile' vectors are stored; "
                             "run `genre enrich` (llm.roles with 'profile') first")
        self.gen_modality = _cold_gen_modality(data, self.modalities) if self.config.use_cold_gen else None
        net = self._build(self._item_dims(data), {m: data.user_features[m].shape[1] for m in self.user_modalities})
        net.reset_parameters(gen)
        pos = self._fill_items(net, data)
        with torch.no_grad():
            for m in self.user_modalities:
                getattr(net, f"ufeat_{m}").copy_(torch.as_tensor(
                    _norm_rows(data.user_features[m], data.user_feature_mask[m])))
            if self.gen_modality is not None:
                net.gen_vec.copy_(torch.as_tensor(_norm_like(data.user_features[COLD_GEN_MODALITY],
                                                             data.user_feature_mask[COLD_GEN_MODALITY],
                                                             data.item_features[self.gen_modality],
                                                             data.item_feature_mask[self.gen_modality])))
                net.gen_mask.copy_(torch.as_tensor(data.user_feature_mask[COLD_GEN_MODALITY], dtype=torch.float32))
        self.net = net.to(self.device)
        # the time of each history event (aligned with hist_indices): the window of a cut's negatives
        rows = histories_to_csr(pos.user, pos.item, pos.ts, self.idmap.n_users)[2]
        self._hist_ts = torch.as_tensor(pos.ts[rows])
        self._hist_w = torch.as_tensor(pos.weight[rows], dtype=torch.float32)  # events rule weight of each target
        # the value of each history event (aligned with hist_indices) for the rating head
        self._values = torch.as_tensor(data.train.csr_values(self.idmap.n_users)[2], dtype=torch.float32)
        finite = torch.isfinite(self._values)
        self._rate = bool(finite.sum() > 1 and self._values[finite].std() > 0 and self.config.rating_weight > 0)
        if self._rate:
            net.rating_mean.fill_(float(self._values[finite].mean()))
        self._train_users = self._users_with_two_events()
        self._opt = torch.optim.AdamW(net.parameters(), lr=self.config.lr,
                                      weight_decay=self.config.weight_decay)

    # -- batches ------------------------------------------------------------------------------------------
    def _window(self, users: torch.Tensor, cut: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """History window of the last ``max_history`` events before ``cut``: (flat positions, items, age,
        valid), each [B, H]."""
        H = self.config.max_history
        start = self.hist_indptr[users]
        j = torch.arange(H)
        pos = start[:, None] + cut[:, None] - H + j[None, :]
        valid = pos >= start[:, None]
        items = torch.where(valid, self.hist_indices[pos.clamp_min(0)], self.idmap.n_items)
        age = (H - 1 - j).expand_as(pos)
        return pos, items, age, valid

    def _user_vectors(self, users: torch.Tensor, cut: torch.Tensor, in_table: torch.Tensor) -> torch.Tensor:
        _, items, age, valid = self._window(users, cut)
        d = self.device
        return self.net.user_vectors(users.to(d), items.to(d), age.to(d), valid.to(d), in_table)

    def _train_epoch(self, gen: torch.Generator) -> dict[str, float]:
        net, d, n = self.net, self.device, self.idmap.n_items
        users = self._train_users.repeat(self.config.cuts_per_user)
        users = users[torch.randperm(users.numel(), generator=gen)]
        lengths = self.hist_indptr[users + 1] - self.hist_indptr[users]
        cut = 1 + (torch.rand(users.numel(), generator=gen) * (lengths - 1).float()).long()
        bs, W = self.config.batch_size, self.config.target_window
        p_drop, p_user = self.config.id_dropout, self.config.dropout
        trainable = net.has_id[:n] > 0
        totals = {"loss": 0.0, "rank_loss": 0.0, "rating_loss": 0.0, "negative_loss": 0.0}
        steps = 0
        for s in range(0, users.numel(), bs):
            u, c = users[s: s + bs], cut[s: s + bs]
            h = net.has_id * (torch.rand(n + 1, generator=gen) >= p_drop).float().to(d)
            start, L = self.hist_indptr[u], lengths[s: s + bs]
            tpos = start[:, None] + c[:, None] + torch.arange(W)[None, :]
            tvalid = (c[:, None] + torch.arange(W)[None, :]) < L[:, None]
            tgt = torch.where(tvalid, self.hist_indices[tpos.clamp_max(len(self.hist_indices) - 1)], n)
            keep = torch.rand(u.numel(), net.dim, generator=gen) >= p_user
            with self.autocast():
                out, inn, bias = net.item_tables(h)
                uv = self._user_vectors(u, c, inn) * keep.to(d) / (1.0 - p_user)
                tw = self._hist_w[tpos.clamp_max(len(self._hist_w) - 1)].to(d)
                rank_loss = self._rank_loss(uv, out, bias, u, c, tgt.to(d), tvalid.to(d), trainable, gen, tw)
                loss = self.config.ranking_weight * rank_loss
                rate_loss = torch.zeros((), device=d)
                if self._rate:
                    vals = self._values[tpos.clamp_max(len(self._values) - 1)]
                    ok = (tvalid & torch.isfinite(vals)).to(d)
                    if ok.any():
                        pred = net.rating(uv, u.to(d), tgt.to(d), out).float()
                        rate_loss = ((pred - torch.nan_to_num(vals.to(d))) ** 2)[ok].mean()
                        loss = loss + self.config.rating_weight * rate_loss
                neg_loss = self._negative_loss(uv, out, bias, u, c, L, tgt.to(d), tvalid.to(d))
                loss = loss + self.config.negative_weight * neg_loss
            self.step(loss, self._opt)
            totals["negative_loss"] += float(neg_loss.detach())
            totals["loss"] += float(loss.detach())
            totals["rank_loss"] += float(rank_loss.detach())
            totals["rating_loss"] += float(rate_loss.detach())
            steps += 1
        return {k: v / max(steps, 1) for k, v in totals.items()}

    def _negative_loss(self, uv, out, bias, u, c, L, tgt, tvalid) -> torch.Tensor:  # noqa: ANN001
        """Impression-aware term: the example's targets above the user's explicit negatives (e.g. skipped news)
        between the last input event and the last target, pairwise logistic, weighted by the events rule."""
        if not self._negs:
            return torch.zeros((), device=self.device)
        start, W = self.hist_indptr[u], self.config.target_window
        t_lo = self._hist_ts[start + c - 1]
        t_hi = self._hist_ts[start + torch.minimum(c + W, L) - 1]
        items, w, valid = self._negs.gather(u, t_lo, t_hi, self.config.max_negatives)
        items, w, valid = items.to(self.device), w.to(self.device), valid.to(self.device)
        pos_s = (uv[:, None, :] * out[tgt]).sum(-1) + bias[tgt]  # [B, W]
        neg_s = (uv[:, None, :] * out[items]).sum(-1) + bias[items]  # [B, M]
        return pairwise_negative_loss(pos_s.float(), tvalid, neg_s.float(), w, valid)

    def _rank_loss(self, uv, out, bias, u, c, tgt, tvalid, trainable, gen, tw) -> torch.Tensor:  # noqa: ANN001
        """Implicit ranking loss of the targets ``tgt`` [B, W], each weighted by its events rule weight ``tw``."""
        n, d = self.idmap.n_items, self.device
        kind = self.config.ranking_loss
        if kind == "softmax":
            logits = (uv @ out[:n].T + bias[:n]).float()
            # the input items and never-seen items are not candidates
            Lmax = int((self.hist_indptr[u + 1] - self.hist_indptr[u]).max())
            start = self.hist_indptr[u]
            pos = start[:, None] + torch.arange(Lmax)[None, :]
            inside = torch.arange(Lmax)[None, :] < c[:, None]
            seen = torch.where(inside, self.hist_indices[pos.clamp_max(len(self.hist_indices) - 1)], n)
            blocked = torch.zeros(u.numel(), n + 1, dtype=torch.bool, device=d)
            blocked.scatter_(1, seen.to(d), True)
            blocked = blocked[:, :n] | ~trainable[None, :]
            logp = torch.log_softmax(logits.masked_fill(blocked, float("-inf")), dim=1)
            picked = torch.where(tvalid, logp.gather(1, tgt.clamp_max(n - 1)) * tw, torch.zeros((), device=d))
            return -(picked.sum(1) / tvalid.sum(1).clamp_min(1)).mean()
        pool = torch.nonzero(trainable).flatten()
        neg = pool[torch.randint(0, pool.numel(), (u.numel(), self.config.negatives), generator=gen).to(d)]
        pos_s = (uv[:, None, :] * out[tgt]).sum(-1) + bias[tgt]  # [B, W]
        neg_s = (uv[:, None, :] * out[neg]).sum(-1) + bias[neg]  # [B, K]
        if kind == "bpr":
            per = -F.logsigmoid(pos_s[:, :, None] - neg_s[:, None, :]).mean(-1)
        else:  # sampled softmax: each target against the shared negatives
            lse = torch.logsumexp(torch.cat([pos_s[:, :, None], neg_s[:, None, :].expand(-1, pos_s.shape[1], -1)],
                                            dim=2), dim=2)
            per = lse - pos_s
        per = per.float() * tvalid * tw
        return (per.sum(1) / tvalid.sum(1).clamp_min(1)).mean()

    # -- scoring --------------------------------------------------------------------------------------------
    def _tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.net.item_tables()
        return self._cache

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError("hybrid model is not fitted")
        users = self._check_users(user_idx)
        n = self.idmap.n_items
        with torch.no_grad():
            out, inn, bias = self._tables()
            cut = self.hist_indptr[users + 1] - self.hist_indptr[users]
            uv = self._user_vectors(users, cut, inn)
            return (uv @ out[:n].T + bias[:n]).float()

    def item_vectors(self) -> torch.Tensor:
        return self._tables()[0][: self.idmap.n_items].detach()

    def predict_rating(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor | None:
        """The rating head r(u, i) for aligned (user, item) pairs from each user's full training history;
        None when it was not trained (values did not vary or ``rating_weight`` is 0)."""
        if self.net is None or not self._rate:
            return None
        users, items = self._check_users(user_idx), torch.as_tensor(item_idx, dtype=torch.int64).cpu()
        if items.shape != users.shape:
            raise ValueError(f"item_idx shape {tuple(items.shape)} must match user_idx {tuple(users.shape)}")
        d = self.device
        with torch.no_grad():
            out, inn, _ = self._tables()
            uv = self._user_vectors(users, self.hist_indptr[users + 1] - self.hist_indptr[users], inn)
            return self.net.rating(uv, users.to(d), items[:, None].to(d), out)[:, 0].float()

    def meta(self) -> dict[str, Any]:
        net = self.net
        return {"modalities": self.modalities, "user_modalities": self.user_modalities,
                "rating_head": self._rate, "gen_modality": self.gen_modality, "item_dims": self._meta_item_dims(),
                "user_dims": {m: int(net.user_towers[m].in_features) for m in self.user_modalities} if net else {}}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if self.net is None:
            self.modalities = list(meta["modalities"])
            self.user_modalities = list(meta.get("user_modalities", []))
            self.gen_modality = meta.get("gen_modality")
            self.net = self._build(meta["item_dims"], meta["user_dims"])
        self._rate = bool(meta.get("rating_head", False))
        self._load_net_state(state)
