"""Offline evaluation of a Recommender: rank every candidate item, excluding each user's seen (training) items.

One code path for every model (and for peer libraries through the same Recommender contract); the top-K lists
come from the same ranking step as serving (``genre_core.ranking``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from genre_core.evaluation import beyond as B
from genre_core.evaluation import metrics as M
from genre_core.evaluation.beyond import list_metrics
from genre_core.models.base import Recommender
from genre_core.models.data import Interactions
from genre_core.ranking import CSR, rank_block


@dataclass(frozen=True)
class EvalSet:
    """Targets of one slice: users with at least one target; ``indptr``/``indices`` give each row's targets."""

    name: str
    users: np.ndarray  # int64 [n_eval_users]
    indptr: np.ndarray  # int64 [n_eval_users + 1]
    indices: np.ndarray  # int64 target item indices
    candidates: np.ndarray | None = None  # int64 item indices to rank among; None = the whole catalogue


def make_eval_set(name: str, targets: Interactions, candidates: np.ndarray | None = None) -> EvalSet:
    """Group positive target events by user (distinct items) into an EvalSet."""
    pos = targets.positives()
    if candidates is not None:
        pos = pos.subset(np.isin(pos.item, candidates))
    pairs = np.unique(np.stack([pos.user, pos.item], axis=1), axis=0) if len(pos) else np.zeros((0, 2), np.int64)
    users, counts = np.unique(pairs[:, 0], return_counts=True)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cand = None if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
    return EvalSet(name, users.astype(np.int64), indptr, pairs[:, 1].astype(np.int64), cand)


def metric_names(ks: list[int]) -> list[str]:
    ks = sorted(set(ks))
    return ([f"{m}@{k}" for m in ("recall", "ndcg", "hitrate", "precision", "f1") for k in ks] + ["mrr", "auc"]
            + [f"coverage@{k}" for k in ks])


def evaluate(
    model: Recommender, es: EvalSet, ks: list[int], batch_size: int = 512, with_auc: bool = True,
    item_vectors: np.ndarray | None = None, popularity: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean metrics over the slice's users plus catalogue coverage@k and ``n_users``.

    Every metric in ``metric_names(ks)`` is present; with no evaluable user they are None.
    ``with_auc=False`` skips AUC (it costs a sort per user) and reports it as None. With ``item_vectors``
    (float [n_items, d]) / ``popularity`` (training counts [n_items]) also ``diversity@k`` / ``novelty@k`` of
    the top-k lists (``genre_core.evaluation.beyond``).
    """
    ks = sorted(set(ks))
    per_user, top = evaluate_per_user(model, es, ks, batch_size, with_auc)
    n = len(per_user["mrr"])
    out: dict[str, float] = {}
    for name in metric_names(ks):
        if name.startswith("coverage@"):
            k = int(name.split("@")[1])
            n_cand = model.idmap.n_items if es.candidates is None else es.candidates.size
            out[name] = M.coverage(top[:, :k], n_cand) if n else None
        elif name == "auc" and not with_auc:
            out[name] = None
        else:
            out[name] = float(np.mean(per_user[name])) if n else None
    if item_vectors is not None or popularity is not None:
        out.update(list_metrics(top, ks, item_vectors, popularity))
    out["n_users"] = n
    return out


def evaluate_per_user(
    model: Recommender, es: EvalSet, ks: list[int], batch_size: int = 512, with_auc: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-user metric arrays (users whose targets are all seen items are dropped) and the top-max(k) item
    indices [n, K] (-1 where fewer candidates than K).

    The lists come from the one ranking path (``genre_core.ranking.rank_block``) with the model's seen items
    (``Recommender.seen``, its training histories) and, for a candidate slice, every non-candidate excluded: the
    same lists ``Recommender.recommend`` and the recommend stage give for these users.
    """
    n_items = model.idmap.n_items
    kmax = max(ks)
    cand = es.candidates
    cols = slice(None) if cand is None else cand
    non_cand = None
    if cand is not None:
        non_cand = np.ones(n_items, dtype=bool)
        non_cand[cand] = False
    parts: dict[str, list[np.ndarray]] = {name: [] for name in metric_names(ks) if not name.startswith("coverage")}
    tops: list[np.ndarray] = []
    for start in range(0, es.users.size, batch_size):
        rows = np.arange(start, min(start + batch_size, es.users.size))
        users = torch.as_tensor(es.users[rows], dtype=torch.int64)
        with torch.inference_mode():
            raw = model.score(users.to(model.device)).float().cpu()
        if tuple(raw.shape) != (rows.size, n_items):
            raise ValueError(f"{model.name}.score returned shape {tuple(raw.shape)}, expected {(rows.size, n_items)}")
        seen = model.seen(users)
        excluded = np.zeros((rows.size, n_items), dtype=bool)
        excluded[np.repeat(np.arange(rows.size), seen.lengths()), seen.indices] = True
        if non_cand is not None:
            excluded[:, non_cand] = True
        relevant = np.zeros((rows.size, n_items), dtype=bool)
        lengths = es.indptr[rows + 1] - es.indptr[rows]
        relevant[np.repeat(np.arange(rows.size), lengths), np.concatenate(
            [es.indices[es.indptr[r]: es.indptr[r + 1]] for r in rows])] = True
        relevant &= ~excluded
        keep = relevant.any(axis=1)
        if not keep.any():
            continue
        raw, excluded, relevant = raw[torch.from_numpy(keep)], excluded[keep], relevant[keep]
        scores = np.nan_to_num(raw.numpy(), nan=-np.finfo(np.float32).max, neginf=-np.finfo(np.float32).max,
                               posinf=np.finfo(np.float32).max)[:, cols]
        # rank among the candidates only (their columns, in item order): a candidate slice ranks exactly as if
        # the other items did not exist, ties included
        candidates, relevant = ~excluded[:, cols], relevant[:, cols]
        k_eff = min(kmax, candidates.shape[1])
        top_idx, _ = rank_block(raw[:, torch.from_numpy(np.arange(n_items)[cols])].clone(), k_eff,
                                CSR.from_pairs(*np.nonzero(~candidates), n_rows=len(candidates)))
        top_idx = np.pad(top_idx.numpy(), ((0, 0), (0, kmax - k_eff)), constant_values=-1)
        hits = np.take_along_axis(relevant, np.maximum(top_idx, 0), axis=1) & (top_idx >= 0)
        tops.append(np.where(top_idx >= 0, np.arange(n_items)[cols][np.maximum(top_idx, 0)], -1))
        n_rel = relevant.sum(axis=1)
        for k in ks:
            parts[f"recall@{k}"].append(M.recall_at_k(hits, n_rel, k))
            parts[f"ndcg@{k}"].append(M.ndcg_at_k(hits, n_rel, k))
            parts[f"hitrate@{k}"].append(M.hit_rate_at_k(hits, k))
            parts[f"precision@{k}"].append(M.precision_at_k(hits, k))
            parts[f"f1@{k}"].append(M.f1_at_k(hits, n_rel, k))
        parts["mrr"].append(M.reciprocal_rank(scores, relevant, candidates))
        parts["auc"].append(M.auc(scores, relevant, candidates) if with_auc else np.full(len(n_rel), math.nan))
    per_user = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    top_all = np.concatenate(tops) if tops else np.zeros((0, kmax), dtype=np.int64)
    return per_user, top_all


def rating_errors(model: Recommender, targets: Interactions, batch_size: int = 8192) -> dict[str, float | None]:
    """RMSE and MAE (rating units) of ``model.predict_rating`` on the target events that carry a value, plus
    ``n_ratings``; rmse/mae are None for a model without a rating head or targets without values."""
    ok = np.isfinite(targets.value)
    users, items, observed = targets.user[ok], targets.item[ok], targets.value[ok].astype(np.float64)
    preds: list[np.ndarray] = []
    for s in range(0, users.size, batch_size):
        with torch.inference_mode():
            p = model.predict_rating(torch.as_tensor(users[s: s + batch_size], dtype=torch.int64),
                                     torch.as_tensor(items[s: s + batch_size], dtype=torch.int64))
        if p is None:
            return {"rmse": None, "mae": None, "n_ratings": 0}
        preds.append(p.float().cpu().numpy())
    if not preds:
        return {"rmse": None, "mae": None, "n_ratings": 0}
    predicted = np.concatenate(preds)
    return {"rmse": B.rmse(predicted, observed), "mae": B.mae(predicted, observed), "n_ratings": int(users.size)}
