"""SASRec with content: next-item prediction by causal self-attention over the user's recent history.

Each training example is one user's window of up to ``max_len + 1`` consecutive training events (the most
recent window, or for a longer history a random one each epoch); every position predicts the next event.
Loss: full softmax over the items that have a training id (default) or sampled softmax against ``negatives``
uniform negatives. Items are the id embedding fused with content projections of every stored item modality
(``genre_core.models.sasrec_net``), ids dropped at random (``id_dropout``) so the content path stands alone:
cold items are scored from content only and never enter the softmax, so training does not push them down.
Explicit negatives (``TrainData.negatives()``, ``events`` role negative, e.g. MIND skips) add the hybrid's
impression-aware term per position: the target above the user's negatives between the input event and the
target (``genre_core.models.negatives``), weighted by ``negative_weight``; without negatives nothing changes.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from genre_core.models.base import histories_to_csr
from genre_core.models.config import SASRecConfig
from genre_core.models.data import TrainData
from genre_core.models.negatives import pairwise_negative_loss
from genre_core.models.net_model import NetRecommender
from genre_core.models.registry import MODELS
from genre_core.models.sasrec_net import SASRecNet


@MODELS.register("sasrec")
class SASRec(NetRecommender):
    scores_cold_items = True  # items unseen in training are scored from their content projections
    Config = SASRecConfig
    tune_space = {  # default search space of `genre tune` (ranges bracket the shipped defaults; heads divide dim)
        "dim": {"type": "categorical", "choices": [32, 64, 128]},
        "heads": {"type": "categorical", "choices": [1, 2]},
        "layers": {"type": "int", "low": 1, "high": 3},
        "max_len": {"type": "categorical", "choices": [20, 50, 100]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "id_dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "lr": {"type": "float", "low": 0.0003, "high": 0.01, "log": True},
        "weight_decay": {"type": "categorical", "choices": [0.0, 1e-05, 0.0001, 0.001]},
    }
    config: SASRecConfig

    def __init__(self, idmap, config: SASRecConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.net: SASRecNet | None = None
        self._cache: torch.Tensor | None = None  # cached item table in eval mode

    def _build(self, item_dims: dict[str, int]) -> SASRecNet:
        c = self.config
        return SASRecNet(self.idmap.n_items, item_dims, c.dim, c.heads, c.layers, c.max_len)

    # -- setup ------------------------------------------------------------------------------------------------
    def _setup(self, data: TrainData, gen: torch.Generator) -> None:
        requested = self.config.modalities
        self.modalities = sorted(data.item_features) if requested is None else list(requested)
        missing = [m for m in self.modalities if m not in data.item_features]
        if missing:
            raise ValueError(f"train.sasrec.modalities {missing} have no stored vectors (stored: "
                             f"{sorted(data.item_features)}); run `genre features` or change the config")
        net = self._build(self._item_dims(data))
        net.reset_parameters(gen)
        pos = self._fill_items(net, data)
        self.net = net.to(self.device)
        # the time of each history event (aligned with hist_indices): the window of a position's negatives
        self._hist_ts = torch.as_tensor(pos.ts[histories_to_csr(pos.user, pos.item, pos.ts, self.idmap.n_users)[2]])
        self._train_users = self._users_with_two_events()
        self._opt = torch.optim.Adam(net.parameters(), lr=self.config.lr,
                                     weight_decay=self.config.weight_decay)

    # -- batches ----------------------------------------------------------------------------------------------
    def _positions(self, users: torch.Tensor, end: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions int64 [B, length] into ``hist_indices`` of each user's events [end - length, end) clamped
        at 0, valid bool [B, length]: False on the left padding)."""
        start = self.hist_indptr[users]
        pos = start[:, None] + end[:, None] - length + torch.arange(length)[None, :]
        return pos.clamp_min(0), pos >= start[:, None]

    def _window(self, users: torch.Tensor, end: torch.Tensor, length: int) -> torch.Tensor:
        """int64 [B, length]: each user's history events [end - length, end), left-padded with N."""
        pos, valid = self._positions(users, end, length)
        return torch.where(valid, self.hist_indices[pos], self.idmap.n_items)

    def _negative_loss(self, hid: torch.Tensor, table: torch.Tensor, t: torch.Tensor, users: torch.Tensor,
                       end: torch.Tensor, ok: torch.Tensor, length: int) -> torch.Tensor:
        """Impression-aware term over the positions with a target: ``hid`` [P, d] above the user's explicit
        negatives between the input event and the target (times from ``_hist_ts``), pairwise logistic."""
        pos, _ = self._positions(users, end, length)
        u = users[:, None].expand(-1, length - 1)[ok]
        items, w, valid = self._negs.gather(u, self._hist_ts[pos[:, :-1][ok]], self._hist_ts[pos[:, 1:][ok]],
                                            self.config.max_negatives)
        items, w, valid = items.to(self.device), w.to(self.device), valid.to(self.device)
        pos_s = (hid * table[t]).sum(-1, keepdim=True)  # [P, 1]
        neg_s = (hid[:, None, :] * table[items]).sum(-1)  # [P, M]
        return pairwise_negative_loss(pos_s.float(), torch.ones_like(pos_s, dtype=torch.bool), neg_s.float(), w, valid)

    def _train_epoch(self, gen: torch.Generator) -> dict[str, float]:
        net, d, n = self.net, self.device, self.idmap.n_items
        L, p = self.config.max_len, self.config.dropout
        users = self._train_users[torch.randperm(self._train_users.numel(), generator=gen)]
        lengths = self.hist_indptr[users + 1] - self.hist_indptr[users]
        # window end: the newest event, or for long histories a random point that leaves a full window
        low = torch.clamp(lengths, max=L + 1)
        end = low + (torch.rand(users.numel(), generator=gen) * (lengths - low + 1).float()).long()
        bs, p_id = self.config.batch_size, self.config.id_dropout
        trainable = net.has_id[:n] > 0
        pool = torch.nonzero(trainable).flatten()
        total, steps = 0.0, 0
        for s in range(0, users.numel(), bs):
            seq = self._window(users[s: s + bs], end[s: s + bs], L + 1)
            inp, tgt = seq[:, :-1], seq[:, 1:]
            ok = (inp < n) & (tgt < n)
            keep = (torch.rand(n + 1, generator=gen) >= p_id).float().to(d)
            with self.autocast():
                table = net.item_table(keep)
                hid = net.encode(inp.to(d), table, p, gen)[ok.to(d)]  # [P, d] positions with a target
                t = tgt[ok].to(d)
                if self.config.loss == "softmax":
                    logits = (hid @ table[:n].T).float().masked_fill(~trainable[None, :], float("-inf"))
                    loss = F.cross_entropy(logits, t)
                else:
                    neg = pool[torch.randint(0, pool.numel(), (self.config.negatives,), generator=gen)
                               .to(pool.device)]
                    pos_s = (hid * table[t]).sum(-1, keepdim=True)
                    neg_s = hid @ table[neg].T
                    neg_s = neg_s.masked_fill(neg[None, :] == t[:, None], float("-inf"))  # a negative = target
                    loss = F.cross_entropy(torch.cat([pos_s, neg_s], 1).float(),
                                           torch.zeros(t.numel(), dtype=torch.int64, device=d))
                if self._negs:
                    loss = loss + self.config.negative_weight * self._negative_loss(
                        hid, table, t, users[s: s + bs], end[s: s + bs], ok, L + 1)
            self.step(loss, self._opt)
            total += float(loss.detach())
            steps += 1
        return {"loss": total / max(steps, 1)}

    # -- scoring ----------------------------------------------------------------------------------------------
    def _item_table(self) -> torch.Tensor:
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.net.item_table().float()
        return self._cache

    def user_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        """float32 [b, d]: the hidden state after each user's most recent ``max_len`` training events."""
        users = self._check_users(user_idx)
        lengths = self.hist_indptr[users + 1] - self.hist_indptr[users]
        items = self._window(users, lengths, self.config.max_len).to(self.device)
        with torch.no_grad():
            return self.net.encode(items, self._item_table())[:, -1].float()

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError("sasrec model is not fitted")
        return self.user_vectors(user_idx) @ self._item_table()[: self.idmap.n_items].T

    def item_vectors(self) -> torch.Tensor:
        return self._item_table()[: self.idmap.n_items].detach()

    def meta(self) -> dict[str, Any]:
        return {"modalities": self.modalities, "item_dims": self._meta_item_dims()}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        if self.net is None:
            self.modalities = list(meta["modalities"])
            self.net = self._build(meta["item_dims"])
        self._load_net_state(state)
