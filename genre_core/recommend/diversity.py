"""Diversity re-ranking at publish time: maximal marginal relevance (MMR) over item content vectors.

Per user, a candidate pool (the model's top ``k * pool_factor`` unseen items) is re-ranked greedily
(Carbonell & Goldstein, 1998): the next item is the one maximising

    (1 - w) * rel(i) - w * max_{j already chosen} cos(v_i, v_j)

with ``w = recommend.diversity.weight`` (0 = the model's order, off by default; 1 = pure diversity after the
first item). ``rel`` is the model score min-max scaled to [0, 1] within the user's pool, so ``w`` means the
same for every model whatever the scale of its scores. Content vectors are centred on the catalogue mean and
L2-normalised (the space of the intra-list diversity metric); an item without a vector (zero row) counts as
unlike every other item. Ties go to the better model score.
"""
from __future__ import annotations

import numpy as np

from genre_core.ranking import TopK

NEG_INF = float("-inf")


def centred_unit_rows(vectors: np.ndarray, has: np.ndarray) -> np.ndarray:
    """float32 [n, d]: rows of ``vectors`` (float [n, d]) centred on the mean of the rows where ``has`` (bool
    [n]) and L2-normalised; rows without a vector stay zero."""
    v = np.asarray(vectors, dtype=np.float32).copy()
    has = np.asarray(has, dtype=bool)
    if has.any():
        v[has] -= v[has].mean(axis=0, keepdims=True)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    v[~has] = 0.0
    return v


def pool_size(k: int, pool_factor: int, n_items: int) -> int:
    """Candidates re-ranked per user: ``k * pool_factor`` capped at the catalogue size."""
    return min(n_items, k * pool_factor)


def mmr_rerank(
    items: np.ndarray, scores: np.ndarray, vectors: np.ndarray, k: int, weight: float, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each row's candidate pool by MMR and keep ``k``.

    Args:
        items: int64 [n, P] candidate item indices (any order; -1 = empty slot).
        scores: float [n, P] model scores of the candidates (-inf for empty slots).
        vectors: float [n_items, d] unit (or zero) content vectors indexed by item.
        k: list length (<= P); weight: ``w`` in [0, 1]; chunk: rows processed at once (memory ~ chunk*P*P).
    Returns:
        (int64 [n, k] items, float32 [n, k] their model scores) in MMR order; empty slots -1 / -inf.
    """
    items, scores = np.asarray(items, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    if items.ndim != 2 or items.shape != scores.shape:
        raise ValueError(f"items {items.shape} and scores {scores.shape} must be 2-d arrays of the same shape")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    n, pool = items.shape
    if not 1 <= k <= pool:
        raise ValueError(f"k={k} must be in [1, {pool}] (the pool size)")
    vectors = np.asarray(vectors, dtype=np.float32)
    if items.size and items.max() >= vectors.shape[0]:
        raise ValueError(f"candidate item {int(items.max())} has no row in vectors [{vectors.shape[0]}, d]")
    out_items = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), NEG_INF, dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        it, sc = items[start:stop], scores[start:stop]
        valid = (it >= 0) & np.isfinite(sc)
        lo = np.where(valid, sc, np.inf).min(axis=1, keepdims=True)
        hi = np.where(valid, sc, -np.inf).max(axis=1, keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        rel = np.where(valid, (sc - np.where(np.isfinite(lo), lo, 0.0)) / span, 0.0)  # [b, P] in [0, 1]
        v = vectors[np.maximum(it, 0)] * valid[:, :, None]  # [b, P, d]
        sim = np.einsum("bpd,bqd->bpq", v, v)  # [b, P, P]
        # rank by score first so that argmax breaks ties towards the better model score
        order = np.argsort(-np.where(valid, sc, -np.inf), axis=1, kind="stable")
        rows = np.arange(stop - start)[:, None]
        it, sc, rel, valid = it[rows, order], sc[rows, order], rel[rows, order], valid[rows, order]
        sim = sim[rows[:, :, None], order[:, :, None], order[:, None, :]]
        max_sim = np.zeros_like(rel)
        free = valid.copy()
        r = np.arange(stop - start)
        for slot in range(k):
            gain = np.where(free, (1.0 - weight) * rel - weight * max_sim, -np.inf)
            pick = gain.argmax(axis=1)  # first maximum: the better-scored candidate
            ok = free[r, pick]
            out_items[start + r[ok], slot] = it[r[ok], pick[ok]]
            out_scores[start + r[ok], slot] = sc[r[ok], pick[ok]]
            free[r, pick] = False
            max_sim = np.maximum(max_sim, sim[r, pick, :])
    return out_items, out_scores


def diversify(top: TopK, vectors: np.ndarray | None, k: int, weight: float) -> TopK:
    """The published top-``k`` from a candidate pool ``top`` ([n, P] from ``topk_blocked``): MMR with
    ``weight`` over ``vectors`` (float [n_items, d], see ``centred_unit_rows``); with weight 0 or no vectors,
    the pool's first ``k`` (the model's order)."""
    k = min(k, top.items.shape[1])
    if weight <= 0 or vectors is None:
        return TopK(items=top.items[:, :k], scores=top.scores[:, :k])
    items, scores = mmr_rerank(top.items, top.scores, vectors, k, weight)
    return TopK(items=items, scores=scores)
