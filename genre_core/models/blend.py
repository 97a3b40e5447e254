"""A validated blend: registered models combined with weights fitted on the validation split.

``fit`` (1) fits every member on the inner training part (iterative members early-stop on validation as in
the train stage), (2) scores a seeded sample of validation users with each member, normalises each member's
scores per user (z-score over the catalogue) and picks the weights, multiples of ``step`` summing to 1, that
maximise ``metric`` there (exhaustive grid; ties go to the earlier grid point; a mix is used only when it beats the
best member alone by ``min_gain``, relative, and in at least ``min_confidence`` of paired bootstrap resamples of
the validation users, else that member gets weight 1), and (3) refits every member on
the whole training part (iterative ones for their best number of epochs). ``score`` = sum_m w_m z_m(u, .).

History-length aware: a second weight vector, the *cold* weights, serves users whose training history has at
most ``cold_max_history`` events (cold users keep only a few). It is fitted in step (2) on the same sampled
validation users, each member scoring them from a truncated history (each user's first ``cold_history``
inner-training events, set on the member with ``set_histories`` and restored afterwards), with all of the
user's inner events still excluded from ranking, relevant = the user's validation events; same grid, same
metric code. Members that score from the histories set on them (hybrid, sasrec, itemknn, content) see the cut;
``popularity`` does not depend on it; ``bpr`` scores from a user embedding and ignores it (its cold z-scores
equal its warm ones). Limitation: the members were fitted on the users' whole inner histories, so the simulated
cold users are less cold for the members than real ones (their later events shaped the item statistics).
Without a validation split (``valid``/``inner`` not given) it carves one itself: each user's last event.
The test split is never used. Members are built by the ``build`` callable the train stage passes to ``fit``
(``build_model`` over the TrainConfig, so each member gets its own typed section ``train.<member>``); without
one, members take their ``Config`` defaults. Each member's section is saved in the blend's meta, so a loaded
blend rebuilds its members with the settings they were trained with.

Members the train stage has already fitted are not fitted again: ``fit(..., fitted={name: FittedMember})``
takes, per member, the model fitted on the inner part (with its best epoch) and/or the one refitted on the
whole training part, as ``genre_core.models.pipeline.fit_and_evaluate`` produced them for the same config
section and seed; only what is missing is fitted here (a default ``genre train`` with the blend listed after
its members fits each member twice, not four times).
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_core.evaluation import metrics as M
from genre_core.evaluation.evaluate import EvalSet, make_eval_set
from genre_core.evaluation.split import user_temporal_mask
from genre_core.models.base import Recommender
from genre_core.models.config import BlendConfig
from genre_core.models.data import TrainData
from genre_core.models.registry import MODELS
from genre_core.models.training import FitReport, timed
from genre_core.ranking import CSR, rank_block

log = logging.getLogger("genre.blend")


def zscore(scores: torch.Tensor) -> torch.Tensor:
    """float32 [b, n] -> per-row (s - mean) / std; non-finite entries first set to the row's finite minimum."""
    s = scores.float()
    finite = torch.isfinite(s)
    low = torch.where(finite, s, torch.full_like(s, float("inf"))).amin(1, keepdim=True)
    s = torch.where(finite, s, torch.where(torch.isfinite(low), low, torch.zeros_like(low)))
    return (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp_min(1e-6)


def paired_confidence(diff: np.ndarray, seed: int, resamples: int = 2000) -> float:
    """Share of bootstrap resamples of the users (seeded, paired) in which the mean of ``diff`` (a mix's metric
    minus the best single member's, per validation user) is > 0: how sure the validation is that the mix helps."""
    if diff.size == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    means = np.stack([diff[rng.integers(0, diff.size, diff.size)].mean() for _ in range(resamples)])
    return float((means > 0).mean())


def weight_grid(n_members: int, step: float) -> np.ndarray:
    """float64 [g, n_members]: every weight vector of non-negative multiples of ``step`` summing to 1."""
    units = int(round(1.0 / step))
    rows = [c for c in itertools.product(range(units + 1), repeat=n_members) if sum(c) == units]
    return np.asarray(rows, dtype=np.float64) / units


def truncate_histories(indptr: np.ndarray, indices: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's first ``n`` history items: CSR (indptr int64 [U + 1], indices int64 [<= U * n]), time order kept."""
    keep = np.minimum(np.diff(indptr), n)
    out_ptr = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
    pos = np.repeat(indptr[:-1], keep) + (np.arange(int(out_ptr[-1])) - np.repeat(out_ptr[:-1], keep))
    return out_ptr, np.asarray(indices, dtype=np.int64)[pos]


def carve_validation(data: TrainData) -> tuple[TrainData, EvalSet]:
    """Each user's last positive event (users with two or more) as validation; the rest as inner training."""
    pos = data.train.positives()
    held = user_temporal_mask(pos, np.zeros(len(pos), dtype=bool), 0.0, 1)
    inner = pos.subset(~held)
    seen = np.zeros(data.idmap.n_items, dtype=bool)
    seen[inner.item] = True
    valid = pos.subset(held)
    return data.with_train(inner), make_eval_set("valid", valid.subset(seen[valid.item]))


@dataclass
class FittedMember:
    """A member the caller has already trained with the member's own config section and the blend's seed:
    ``inner`` fitted on the inner training part (early-stopped on validation, ``best_epoch``), ``final`` fitted on
    the whole training part (iterative ones for ``best_epoch`` epochs). Either may be None (fitted here then)."""

    inner: Recommender | None = None
    final: Recommender | None = None
    best_epoch: int | None = None


@MODELS.register("blend")
class Blend(Recommender):
    Config = BlendConfig
    config: BlendConfig

    def __init__(self, idmap, config: BlendConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.members: dict[str, Recommender] = {}
        self.weights: dict[str, float] = {}
        self.cold_weights: dict[str, float] = {}  # users with <= cold_max_history events (empty: warm weights)
        self.valid_metrics: dict[str, float] = {}  # the fitted weights' validation metric, warm and simulated cold
        self._build: Callable[[str], Recommender] | None = None

    def _new_member(self, name: str) -> Recommender:
        """A fresh member ``name``: from the ``build`` callable given to ``fit``, else with its Config defaults."""
        member = self._build(name) if self._build is not None else MODELS.get(name)(self.idmap, None, seed=self.seed)
        return member.to(self.device)

    # -- fit --------------------------------------------------------------------------------------------------
    def fit(self, data: TrainData, valid: EvalSet | None = None, *, inner: TrainData | None = None,
            build: Callable[[str], Recommender] | None = None, metric: str = "ndcg@10", eval_every: int = 1,
            amp: bool = True, progress: bool = False, on_epoch: Any = None,
            fitted: Mapping[str, FittedMember] | None = None, **_: Any) -> FitReport:
        """Fit members on ``inner`` (early stopping on ``valid``), the weights on ``valid``, then refit the
        members on ``data``. ``build(name)`` makes an untrained member with its config section (the train stage
        passes ``build_model`` over ``train``). ``fitted``: members already trained on these same parts (reused,
        not refitted; ignored when the blend carves its own validation). Returns a FitReport whose
        ``best_valid`` is the blend's validation metric; ``details["reused"]`` lists the reused fits."""
        report = FitReport()
        self._build = build
        with timed() as t:
            fitted = dict(fitted or {})
            if valid is None or inner is None or not valid.users.size:
                inner, valid = carve_validation(data)
                fitted = {}  # the caller's fits saw another inner part
            reused: list[str] = []
            names = list(self.config.members)
            opts = {"metric": metric, "eval_every": eval_every, "amp": amp, "progress": progress}
            epochs: dict[str, int | None] = {}
            zs: dict[str, torch.Tensor] = {}
            cold_zs: dict[str, torch.Tensor] = {}
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(valid.users.size, min(valid.users.size, self.config.valid_users),
                                      replace=False))
            users = torch.as_tensor(valid.users[rows], dtype=torch.int64)
            cold = self.config.cold_max_history > 0
            full = inner.histories()
            cut = truncate_histories(*full, self.config.cold_history)
            for name in tqdm(names, desc="blend: members on inner", disable=not progress, leave=False):
                done = fitted.get(name)
                if done is not None and done.inner is not None:
                    member, epochs[name] = done.inner.to(self.device), done.best_epoch
                    reused.append(f"{name}:inner")
                else:
                    member = self._new_member(name)
                    rep = member.fit(inner, valid if member.iterative else None,
                                     on_epoch=self._hook(name, on_epoch), **opts)
                    epochs[name] = rep.best_epoch
                zs[name] = self._member_z(member, users).half()  # [V, n] on CPU, half to bound memory
                if cold:  # the same users seen through their first cold_history events only
                    member.set_histories(*cut)
                    try:
                        cold_zs[name] = self._member_z(member, users).half()
                    finally:  # a reused member is the caller's model: give it its histories back
                        member.set_histories(*full)
                del member
            self.set_histories(*full)
            relevant, seen = self._targets(users, valid, rows)  # seen: the whole inner histories, both searches
            self.weights, report.best_valid = self._search(names, zs, relevant, seen)
            self.valid_metrics = {self.config.metric: report.best_valid}
            self.cold_weights = {}
            if cold:
                self.cold_weights, cold_value = self._search(names, cold_zs, relevant, seen)
                self.valid_metrics[f"cold_{self.config.metric}"] = cold_value
            log.info("blend: weights %s (valid %s %.4f); cold weights %s for users with <= %d events (valid %s "
                     "%.4f with histories cut to %d)", self.weights, self.config.metric, report.best_valid,
                     self.cold_weights, self.config.cold_max_history, self.config.metric,
                     self.valid_metrics.get(f"cold_{self.config.metric}", float("nan")), self.config.cold_history)
            report.details = {"valid": dict(self.valid_metrics), "weights": dict(self.weights),
                              "cold_weights": dict(self.cold_weights), "reused": reused}
            del cold_zs
            del zs
            self.members = {}
            for name in tqdm(names, desc="blend: members on train", disable=not progress, leave=False):
                done = fitted.get(name)
                if done is not None and done.final is not None:
                    member = done.final.to(self.device)
                    reused.append(f"{name}:final")
                else:
                    member = self._new_member(name)
                    member.fit(data, None, epochs=epochs[name] if member.iterative else None, **opts)
                self.members[name] = member
            self.set_histories(*data.histories())
            self._build = None
        report.fit_s = t.seconds
        return report

    @staticmethod
    def _hook(name: str, on_epoch: Any) -> Any:
        if on_epoch is None:
            return None
        return lambda r: on_epoch({"epoch": r["epoch"], **{f"{name}.{k}": v for k, v in r.items() if k != "epoch"}})

    @staticmethod
    def _member_z(member: Recommender, users: torch.Tensor, batch: int = 512) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([zscore(member.score(users[s: s + batch].to(member.device)).cpu())
                              for s in range(0, users.numel(), batch)]) if users.numel() else torch.zeros(0)

    def _targets(self, users: torch.Tensor, valid: EvalSet, rows: np.ndarray) -> tuple[np.ndarray, CSR]:
        """(relevant bool [V, n_items]: each sampled user's validation items not seen in training, seen: the
        blend's current histories of ``users``, excluded from ranking as in evaluation)."""
        relevant = np.zeros((users.numel(), self.idmap.n_items), dtype=bool)
        for j, r in enumerate(rows):
            relevant[j, valid.indices[valid.indptr[r]: valid.indptr[r + 1]]] = True
        seen = self.seen(users)
        relevant[np.repeat(np.arange(users.numel()), seen.lengths()), seen.indices] = False
        return relevant, seen

    def _search(self, names: list[str], zs: dict[str, torch.Tensor], relevant: np.ndarray, seen: CSR,
                block: int = 256) -> tuple[dict[str, float], float]:
        """The grid point whose blend of the members' z-scores ``zs`` (each [V, n_items]) has the best
        ``metric`` over the users with a relevant item; ties go to the earlier grid point. Users are taken
        ``block`` rows at a time, every grid point per block (the members' rows converted to float32 once)."""
        kind, k = self.config.metric.split("@")
        fn = {"ndcg": M.ndcg_at_k, "recall": M.recall_at_k, "hitrate": lambda h, n, k: M.hit_rate_at_k(h, k)}[kind]
        k = int(k)
        grid = weight_grid(len(names), self.config.step)
        grid_t = torch.as_tensor(grid, dtype=torch.float32)
        ok = relevant.any(1)
        sums = np.zeros(len(grid))
        per_user = np.zeros((len(grid), int(ok.sum())))  # each grid point's metric per user, for the paired test
        done = 0
        for s in range(0, relevant.shape[0], block):
            rows = np.flatnonzero(ok[s: s + block]) + s
            if not rows.size:
                continue
            z = torch.stack([zs[n][torch.as_tensor(rows)].float() for n in names])  # [m, b, n_items]
            rel, part = relevant[rows], seen.take(rows)
            n_rel = rel.sum(1)
            for g in range(len(grid)):
                total = torch.tensordot(grid_t[g], z, dims=1)  # [b, n_items]
                top = rank_block(total, k, part)[0].numpy()  # the one ranking path (seen-masking + top-K)
                hits = np.take_along_axis(rel, top.clip(0), axis=1) & (top >= 0)
                vals = fn(hits, n_rel, k)
                per_user[g, done: done + rows.size] = vals
                sums[g] += float(np.sum(vals))
            done += rows.size
        values = sums / max(int(ok.sum()), 1)
        best = int(np.argmax(values > values.max() - 1e-9))  # the first point within 1e-9 of the best
        single = np.flatnonzero(np.isclose(grid.max(1), 1.0))  # one member alone
        if single.size and not np.isclose(grid[best].max(), 1.0):
            solo = int(single[np.argmax(values[single] > values[single].max() - 1e-9)])
            mix, alone = dict(zip(names, grid[best].round(3))), names[int(np.argmax(grid[solo]))]
            if values[best] < values[solo] * (1.0 + self.config.min_gain):  # the mix's gain is within the margin
                log.info("blend: mix %s (%.4f) within min_gain %.3f of %s alone (%.4f): using it alone",
                         mix, values[best], self.config.min_gain, alone, values[solo])
                best = solo
            elif self.config.min_confidence > 0:
                sure = paired_confidence(per_user[best] - per_user[solo], self.seed)
                if sure < self.config.min_confidence:
                    log.info("blend: mix %s (%.4f) beats %s alone (%.4f) in %.0f%% of bootstrap resamples of the "
                             "validation users, under min_confidence %.0f%%: using it alone", mix, values[best],
                             alone, values[solo], 100 * sure, 100 * self.config.min_confidence)
                    best = solo
        return {n: float(x) for n, x in zip(names, grid[best])}, float(values[best])

    # -- score ------------------------------------------------------------------------------------------------
    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        """sum_m w_m(u) z_m(u, .): the cold weights for users whose history has <= ``cold_max_history``
        events (when fitted), the warm ones for the rest. float32 [b, n_items]."""
        if not self.members:
            raise RuntimeError("blend model is not fitted")
        users = self._check_users(user_idx)
        w = self._user_weights(users).to(self.device)  # [b, m]
        out = torch.zeros(users.numel(), self.idmap.n_items, device=self.device)
        for j, (name, member) in enumerate(self.members.items()):
            if bool((w[:, j] > 0).any()):
                out += w[:, j: j + 1] * zscore(member.score(users.to(member.device))).to(self.device)
        return out

    def _user_weights(self, users: torch.Tensor) -> torch.Tensor:
        """float32 [b, n_members]: each user's weight vector, cold or warm by training-history length."""
        warm = torch.tensor([self.weights.get(n, 0.0) for n in self.members], dtype=torch.float32)
        w = warm.expand(users.numel(), -1).clone()
        if self.cold_weights and self.config.cold_max_history > 0:
            lengths = self.hist_indptr[users + 1] - self.hist_indptr[users]
            short = lengths <= self.config.cold_max_history
            w[short] = torch.tensor([self.cold_weights.get(n, 0.0) for n in self.members], dtype=torch.float32)
        return w

    def item_vectors(self) -> torch.Tensor | None:
        """float32 [n_items, sum of d_m]: the members' item vectors (those that have them), each row L2-normalised
        and scaled by sqrt(w_m) of its warm weight, side by side, so a cosine between two items is the weight-mixed
        cosine of the members (similar items and the *because* item of explanations). Members with weight 0 count
        only when no weighted member has vectors (equal shares then). None when no member has item vectors."""
        found = [(n, v) for n, m in self.members.items() if (v := m.item_vectors()) is not None]
        weighted = [(n, v) for n, v in found if self.weights.get(n, 0.0) > 0]
        use = weighted or found
        if not use:
            return None
        shares = [self.weights.get(n, 0.0) if weighted else 1.0 / len(use) for n, _ in use]
        parts = [torch.nn.functional.normalize(v.float(), dim=1) * w ** 0.5 for (_, v), w in zip(use, shares)]
        return torch.cat([p.to(self.device) for p in parts], dim=1)

    @property
    def scores_cold_items(self) -> bool:  # type: ignore[override]
        """True when a member that scores items unseen in training from content has weight (warm or cold) in the
        fitted blend (before fitting: when any configured member can)."""
        if not self.members:
            return any(getattr(MODELS.get(n), "scores_cold_items", False) for n in self.config.members)
        used = {n for n, w in (*self.weights.items(), *self.cold_weights.items()) if w > 0} or set(self.members)
        return any(m.scores_cold_items for n, m in self.members.items() if n in used)

    def _to(self, device: torch.device) -> None:
        for member in self.members.values():
            member.to(device)

    def meta(self) -> dict[str, Any]:
        return {"weights": self.weights, "cold_weights": self.cold_weights, "valid_metrics": self.valid_metrics,
                "members": {n: m.meta() for n, m in self.members.items()},
                "member_configs": {n: m.config.model_dump(mode="json") for n, m in self.members.items()}}

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{n}.{k}": v for n, m in self.members.items() for k, v in m.state().items()}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.weights = {n: float(w) for n, w in meta["weights"].items()}
        # blends saved before the cold weights existed: every user gets the warm weights
        self.cold_weights = {n: float(w) for n, w in (meta.get("cold_weights") or {}).items()}
        self.valid_metrics = {k: float(v) for k, v in (meta.get("valid_metrics") or {}).items()}
        self.members = {}
        for name in self.config.members:
            cls = MODELS.get(name)
            member = cls(self.idmap, cls.Config.model_validate(meta["member_configs"][name]), seed=self.seed)
            member.set_histories(self.hist_indptr.numpy(), self.hist_indices.numpy())
            member.load_state({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")},
                              meta["members"][name])
            self.members[name] = member.to(self.device)
