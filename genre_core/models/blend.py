"""A validated blend: registered models combined with weights fitted on the validation split.

``fit`` (1) fits every member on the inner training part (iterative members early-stop on validation as in
the train stage), (2) scores a seeded sample of validation users with each member, normalises each member's
scores per user (z-score over the catalogue) and picks the weights, multiples of ``step`` summing to 1, that
maximise ``metric`` there (exhaustive grid; ties go to the earlier grid point), and (3) refits every member on
the whole training part (iterative ones for their best number of epochs). ``score`` = sum_m w_m z_m(u, .).
Without a validation split (``valid``/``inner`` not given) it carves one itself: each user's last event.
The test split is never used. Members are built by the ``build`` callable the train stage passes to ``fit``
(``build_model`` over the TrainConfig, so each member gets its own typed section ``train.<member>``); without
one, members take their ``Config`` defaults. Each member's section is saved in the blend's meta, so a loaded
blend rebuilds its members with the settings they were trained with.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
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
from genre_core.ranking import rank_block


def zscore(scores: torch.Tensor) -> torch.Tensor:
    """float32 [b, n] -> per-row (s - mean) / std; non-finite entries first set to the row's finite minimum."""
    s = scores.float()
    finite = torch.isfinite(s)
    low = torch.where(finite, s, torch.full_like(s, float("inf"))).amin(1, keepdim=True)
    s = torch.where(finite, s, torch.where(torch.isfinite(low), low, torch.zeros_like(low)))
    return (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp_min(1e-6)


def weight_grid(n_members: int, step: float) -> np.ndarray:
    """float64 [g, n_members]: every weight vector of non-negative multiples of ``step`` summing to 1."""
    units = int(round(1.0 / step))
    rows = [c for c in itertools.product(range(units + 1), repeat=n_members) if sum(c) == units]
    return np.asarray(rows, dtype=np.float64) / units


def carve_validation(data: TrainData) -> tuple[TrainData, EvalSet]:
    """Each user's last positive event (users with two or more) as validation; the rest as inner training."""
    pos = data.train.positives()
    held = user_temporal_mask(pos, np.zeros(len(pos), dtype=bool), 0.0, 1)
    inner = pos.subset(~held)
    seen = np.zeros(data.idmap.n_items, dtype=bool)
    seen[inner.item] = True
    valid = pos.subset(held)
    return data.with_train(inner), make_eval_set("valid", valid.subset(seen[valid.item]))


@MODELS.register("blend")
class Blend(Recommender):
    Config = BlendConfig
    config: BlendConfig

    def __init__(self, idmap, config: BlendConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.members: dict[str, Recommender] = {}
        self.weights: dict[str, float] = {}
        self._build: Callable[[str], Recommender] | None = None

    def _new_member(self, name: str) -> Recommender:
        """A fresh member ``name``: from the ``build`` callable given to ``fit``, else with its Config defaults."""
        member = self._build(name) if self._build is not None else MODELS.get(name)(self.idmap, None, seed=self.seed)
        return member.to(self.device)

    # -- fit --------------------------------------------------------------------------------------------------
    def fit(self, data: TrainData, valid: EvalSet | None = None, *, inner: TrainData | None = None,
            build: Callable[[str], Recommender] | None = None, metric: str = "ndcg@10", eval_every: int = 1,
            amp: bool = True, progress: bool = False, on_epoch: Any = None, **_: Any) -> FitReport:
        """Fit members on ``inner`` (early stopping on ``valid``), the weights on ``valid``, then refit the
        members on ``data``. ``build(name)`` makes an untrained member with its config section (the train stage
        passes ``build_model`` over ``train``). Returns a FitReport whose ``best_valid`` is the blend's
        validation metric."""
        report = FitReport()
        self._build = build
        with timed() as t:
            if valid is None or inner is None or not valid.users.size:
                inner, valid = carve_validation(data)
            names = list(self.config.members)
            opts = {"metric": metric, "eval_every": eval_every, "amp": amp, "progress": progress}
            epochs: dict[str, int | None] = {}
            zs: dict[str, torch.Tensor] = {}
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(valid.users.size, min(valid.users.size, self.config.valid_users),
                                      replace=False))
            users = torch.as_tensor(valid.users[rows], dtype=torch.int64)
            for name in tqdm(names, desc="blend: members on inner", disable=not progress, leave=False):
                member = self._new_member(name)
                rep = member.fit(inner, valid if member.iterative else None, on_epoch=self._hook(name, on_epoch),
                                 **opts)
                epochs[name] = rep.best_epoch
                zs[name] = self._member_z(member, users).half()  # [V, n] on CPU, half to bound memory
            self.set_histories(*inner.histories())
            self.weights, report.best_valid = self._search(names, zs, users, valid, rows)
            del zs
            self.members = {}
            for name in tqdm(names, desc="blend: members on train", disable=not progress, leave=False):
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

    def _search(self, names: list[str], zs: dict[str, torch.Tensor], users: torch.Tensor, valid: EvalSet,
                rows: np.ndarray) -> tuple[dict[str, float], float]:
        """The grid point with the best validation ``metric`` over the sampled users."""
        kind, k = self.config.metric.split("@")
        fn = {"ndcg": M.ndcg_at_k, "recall": M.recall_at_k, "hitrate": lambda h, n, k: M.hit_rate_at_k(h, k)}[kind]
        k = int(k)
        relevant = np.zeros((users.numel(), self.idmap.n_items), dtype=bool)
        for j, r in enumerate(rows):
            relevant[j, valid.indices[valid.indptr[r]: valid.indptr[r + 1]]] = True
        seen = self.seen(users)  # the inner-training histories: excluded as in evaluation
        seen_rows = np.repeat(np.arange(users.numel()), seen.lengths())
        relevant[seen_rows, seen.indices] = False
        ok = relevant.any(1)
        best, best_w = float("-inf"), None
        for w in weight_grid(len(names), self.config.step):
            total = sum(float(wi) * zs[n].float() for wi, n in zip(w, names) if wi > 0)
            top = rank_block(total, k, seen)[0].numpy()  # the one ranking path (seen-masking + top-K)
            hits = np.take_along_axis(relevant, top.clip(0), axis=1) & (top >= 0)
            hits = hits[ok]
            value = float(np.mean(fn(hits, relevant[ok].sum(1), k))) if ok.any() else 0.0
            if value > best + 1e-9:
                best, best_w = value, w
        return {n: float(x) for n, x in zip(names, best_w)}, best

    # -- score ------------------------------------------------------------------------------------------------
    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        if not self.members:
            raise RuntimeError("blend model is not fitted")
        users = self._check_users(user_idx)
        out = torch.zeros(users.numel(), self.idmap.n_items, device=self.device)
        for name, member in self.members.items():
            w = self.weights.get(name, 0.0)
            if w > 0:
                out += w * zscore(member.score(users.to(member.device))).to(self.device)
        return out

    def _to(self, device: torch.device) -> None:
        for member in self.members.values():
            member.to(device)

    def meta(self) -> dict[str, Any]:
        return {"weights": self.weights, "members": {n: m.meta() for n, m in self.members.items()},
                "member_configs": {n: m.config.model_dump(mode="json") for n, m in self.members.items()}}

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{n}.{k}": v for n, m in self.members.items() for k, v in m.state().items()}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.weights = {n: float(w) for n, w in meta["weights"].items()}
        self.members = {}
        for name in self.config.members:
            cls = MODELS.get(name)
            member = cls(self.idmap, cls.Config.model_validate(meta["member_configs"][name]), seed=self.seed)
            member.set_histories(self.hist_indptr.numpy(), self.hist_indices.numpy())
            member.load_state({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")},
                              meta["members"][name])
            self.members[name] = member.to(self.device)
