"""Beyond-accuracy metrics as pure numpy functions: list diversity, novelty and rating errors.

Conventions (n users, K ranked slots, m catalogue items):
* ``top_items``: int [n, K] item indices in rank order, -1 = empty slot;
* ``item_vectors``: float [m, d] content vectors (any scale; rows of zeros = item without content);
* ``popularity``: int/float [m] training interaction counts per item.

Intra-list diversity (ILD@K) of one list = mean over unordered pairs of its items of the cosine distance
1 - cos(v_i, v_j); items without a content vector (zero row) and empty slots are left out of the pairs; a list
with fewer than two such items has no pair and gets NaN (callers average with ``nanmean``).
Novelty@K of one list = mean over its items of -log2(p_i), p_i = max(c_i, 1) / sum(c): the item's share of the
training interactions, an item never seen in training counting as seen once (so cold items stay finite).
RMSE / MAE compare predicted and observed ratings over the pairs where both are finite.
"""
from __future__ import annotations

import numpy as np


def _check_top(top_items: np.ndarray, m: int, k: int) -> np.ndarray:
    top = np.asarray(top_items)
    if top.ndim != 2:
        raise ValueError(f"top_items must be a 2-d int array [n_users, K], got shape {top.shape}")
    if k < 1 or k > top.shape[1]:
        raise ValueError(f"k={k} must be in [1, {top.shape[1]}] (the ranked slots given)")
    if top.size and top.max() >= m:
        raise ValueError(f"top_items holds item index {int(top.max())}, but only {m} items have vectors/counts")
    return top[:, :k].astype(np.int64)


def intra_list_diversity(top_items: np.ndarray, item_vectors: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: mean pairwise cosine distance between the content vectors of each user's top ``k``."""
    vec = np.asarray(item_vectors, dtype=np.float64)
    if vec.ndim != 2:
        raise ValueError(f"item_vectors must be a 2-d array [n_items, d], got shape {vec.shape}")
    top = _check_top(top_items, vec.shape[0], k)
    norms = np.linalg.norm(vec, axis=1)
    unit = np.divide(vec, norms[:, None], out=np.zeros_like(vec), where=norms[:, None] > 0)
    valid = (top >= 0) & (norms[np.maximum(top, 0)] > 0)  # [n, k]
    v = unit[np.maximum(top, 0)] * valid[:, :, None]  # [n, k, d]
    cos = np.einsum("nkd,njd->nkj", v, v)  # [n, k, k]
    pair = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((k, k), dtype=bool), 1)[None]
    n_pairs = pair.sum(axis=(1, 2))
    dist = ((1.0 - cos) * pair).sum(axis=(1, 2))
    return np.divide(dist, n_pairs, out=np.full(top.shape[0], np.nan), where=n_pairs > 0)


def novelty(top_items: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: mean self-information -log2(share of training interactions) of each user's top ``k``
    (bits); NaN for a list with no item."""
    counts = np.asarray(popularity, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("popularity must be a 1-d array of non-negative counts [n_items]")
    total = counts.sum()
    if total <= 0:
        raise ValueError("popularity has no training interaction (all counts are 0)")
    top = _check_top(top_items, counts.size, k)
    info = -np.log2(np.maximum(counts, 1.0) / total)  # [m]
    valid = top >= 0
    n_valid = valid.sum(axis=1)
    s = np.where(valid, info[np.maximum(top, 0)], 0.0).sum(axis=1)
    return np.divide(s, n_valid, out=np.full(top.shape[0], np.nan), where=n_valid > 0)


def _pairs(predicted: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, o = np.asarray(predicted, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    if p.shape != o.shape or p.ndim != 1:
        raise ValueError(f"predicted {p.shape} and observed {o.shape} must be 1-d arrays of the same length")
    ok = np.isfinite(p) & np.isfinite(o)
    return p[ok], o[ok]


def rmse(predicted: np.ndarray, observed: np.ndarray) -> float | None:
    """Root mean squared error (rating units) over finite pairs; None when there is none."""
    p, o = _pairs(predicted, observed)
    return float(np.sqrt(np.mean((p - o) ** 2))) if p.size else None


def mae(predicted: np.ndarray, observed: np.ndarray) -> float | None:
    """Mean absolute error (rating units) over finite pairs; None when there is none."""
    p, o = _pairs(predicted, observed)
    return float(np.mean(np.abs(p - o))) if p.size else None


def list_metrics(top_items: np.ndarray, ks: list[int], item_vectors: np.ndarray | None,
                 popularity: np.ndarray | None) -> dict[str, float | None]:
    """``diversity@k`` (with ``item_vectors``) and ``novelty@k`` (with ``popularity``) averaged over the
    users whose list has a value; None where not computable."""
    out: dict[str, float | None] = {}
    for k in sorted(set(ks)):
        for name, arg, fn in (("diversity", item_vectors, intra_list_diversity), ("novelty", popularity, novelty)):
            if arg is None or top_items.shape[0] == 0 or k > top_items.shape[1]:
                out[f"{name}@{k}"] = None
                continue
            per_user = fn(top_items, arg, k)
            out[f"{name}@{k}"] = float(np.nanmean(per_user)) if np.isfinite(per_user).any() else None
    return out
