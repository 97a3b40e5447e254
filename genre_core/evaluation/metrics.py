"""Ranking metrics as pure numpy functions returning one value per user; the caller averages.

Conventions (n users, K ranked slots, m candidate items):
* ``hits``: bool [n, K], ``hits[u, r]`` is true when the item ranked at position r (0-based) is relevant;
* ``n_relevant``: int [n] >= 1, the number of relevant items of each user (all of them, not only those in K);
* ``scores``: float [n, m]; ``relevant``/``candidates``: bool [n, m]. Items outside ``candidates`` (e.g. the
  user's training items) are ignored; relevant items must be candidates.

Recall@K = hits in the top K / |relevant|; Precision@K = hits in the top K / K; F1@K = 2PR / (P + R);
NDCG@K uses binary gains, log2 discounts and the ideal DCG of
min(|relevant|, K) hits; HitRate@K = 1 if any hit; MRR = 1 / rank of the best-ranked relevant item among the
candidates (ties count half); AUC = P(score(relevant) > score(non-relevant candidate)), ties count half.
"""
from __future__ import annotations

import numpy as np


def _check_hits(hits: np.ndarray, n_relevant: np.ndarray | None, k: int) -> None:
    if hits.ndim != 2:
        raise ValueError(f"hits must be a 2-d bool array [n_users, K], got shape {hits.shape}")
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k={k} must be in [1, {hits.shape[1]}] (the ranked slots given)")
    if n_relevant is not None:
        if n_relevant.shape != (hits.shape[0],):
            raise ValueError(f"n_relevant must have shape ({hits.shape[0]},), got {n_relevant.shape}")
        if (n_relevant < 1).any():
            raise ValueError("every user must have at least one relevant item")
        if (hits.sum(axis=1) > n_relevant).any():
            raise ValueError("more hits than relevant items for some user")


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: relevant items in the top ``k`` divided by the user's number of relevant items."""
    hits, n_relevant = np.asarray(hits, bool), np.asarray(n_relevant)
    _check_hits(hits, n_relevant, k)
    return hits[:, :k].sum(axis=1) / n_relevant


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: DCG@k / ideal DCG@k with binary gains and 1 / log2(rank + 1) discounts."""
    hits, n_relevant = np.asarray(hits, bool), np.asarray(n_relevant)
    _check_hits(hits, n_relevant, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: relevant items in the top ``k`` divided by ``k`` (empty slots count as misses)."""
    hits = np.asarray(hits, bool)
    _check_hits(hits, None, k)
    return hits[:, :k].sum(axis=1) / float(k)


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: harmonic mean of precision@k and recall@k; 0 for a user with no hit in the top ``k``."""
    p, r = precision_at_k(hits, k), recall_at_k(hits, n_relevant, k)
    total = p + r
    return np.divide(2.0 * p * r, total, out=np.zeros_like(total), where=total > 0)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: 1.0 where at least one of the top ``k`` is relevant."""
    hits = np.asarray(hits, bool)
    _check_hits(hits, None, k)
    return hits[:, :k].any(axis=1).astype(np.float64)


def _check_scores(scores: np.ndarray, relevant: np.ndarray, candidates: np.ndarray) -> None:
    if scores.ndim != 2 or scores.shape != relevant.shape or scores.shape != candidates.shape:
        raise ValueError(f"scores {scores.shape}, relevant {relevant.shape}, candidates {candidates.shape} "
                         "must be 2-d arrays of the same shape")
    if (relevant & ~candidates).any():
        raise ValueError("relevant items must be candidates")
    if (relevant.sum(axis=1) < 1).any():
        raise ValueError("every user must have at least one relevant item")


def reciprocal_rank(scores: np.ndarray, relevant: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """float64 [n]: 1 / (1 + #non-relevant candidates scored above the best relevant item + half the ties)."""
    scores = np.asarray(scores, np.float64)
    relevant, candidates = np.asarray(relevant, bool), np.asarray(candidates, bool)
    _check_scores(scores, relevant, candidates)
    best = np.where(relevant, scores, -np.inf).max(axis=1, keepdims=True)
    other = candidates & ~relevant
    above = (other & (scores > best)).sum(axis=1)
    ties = (other & (scores == best)).sum(axis=1)
    return 1.0 / (1.0 + above + 0.5 * ties)


def auc(scores: np.ndarray, relevant: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """float64 [n]: share of (relevant, non-relevant candidate) pairs ordered correctly, ties half; 1.0 for a
    user whose every candidate is relevant (no pair to get wrong)."""
    scores = np.asarray(scores, np.float64)
    relevant, candidates = np.asarray(relevant, bool), np.asarray(candidates, bool)
    _check_scores(scores, relevant, candidates)
    out = np.empty(scores.shape[0])
    for u in range(scores.shape[0]):
        s = scores[u, candidates[u]]
        r = relevant[u, candidates[u]]
        n_pos, n_neg = int(r.sum()), int((~r).sum())
        if n_neg == 0:
            out[u] = 1.0
            continue
        order = np.argsort(s, kind="mergesort")
        sorted_s = s[order]
        ranks = np.empty(s.size)
        # average ranks (1-based) over ties
        _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
        avg = first + (counts + 1) / 2.0
        ranks[order] = np.repeat(avg, counts)
        out[u] = (ranks[r].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


def coverage(top_items: np.ndarray, n_candidates: int) -> float:
    """Catalogue coverage: distinct items in all users' top lists (int [n, K], -1 = empty slot) / n_candidates."""
    if n_candidates < 1:
        raise ValueError("n_candidates must be >= 1")
    top_items = np.asarray(top_items)
    distinct = np.unique(top_items[top_items >= 0])
    return float(distinct.size / n_candidates)
