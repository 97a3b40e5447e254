"""Impression-based evaluation as in the MIND benchmark: rank only the candidates shown in one impression.

An impression is the set of events of one user at one timestamp that carry a role (positive = clicked,
negative = shown and skipped), e.g. one MIND ``behaviors.tsv`` row after ingestion (``click``/``skip`` events
share the impression time). Impressions with at least one click and one skip are scored; each metric is
computed per impression and averaged over impressions, like the MIND leaderboard's ``evaluate.py``:

* AUC: P(score(clicked) > score(skipped)) within the impression, ties count half;
* MRR: mean over the clicked items of 1 / their rank among the impression's candidates (MIND's ``mrr_score``);
* nDCG@k: gains 2^label - 1 = label, discounts log2(rank + 1), over the top k of the impression.

Pure per-impression functions over 1-d numpy arrays plus ``evaluate_impressions`` for a Recommender.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genre_core.models.data import Interactions

IMPRESSION_METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


@dataclass(frozen=True)
class ImpressionSet:
    """Impressions in index space; impression j's candidates are ``items[indptr[j]:indptr[j + 1]]``."""

    users: np.ndarray  # int64 [n_impressions]
    indptr: np.ndarray  # int64 [n_impressions + 1]
    items: np.ndarray  # int64 [n_candidates] item indices
    labels: np.ndarray  # bool [n_candidates]: clicked (positive) vs shown and skipped (negative)

    def __len__(self) -> int:
        return int(self.users.size)


def make_impression_set(events: Interactions) -> ImpressionSet:
    """Group the positive and negative events by (user, ts) into impressions; keep those with both a positive
    and a negative (an impression of clicks only, or skips only, has no ranking to get right). A (user, item)
    appearing twice in an impression counts once, as a click if either row is one."""
    ev = events.subset(events.positive | events.negative)
    if len(ev) == 0:
        return ImpressionSet(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros(0, bool))
    order = np.lexsort((~ev.positive, ev.item, ev.ts, ev.user))  # clicks first within a duplicated item
    u, t, i, lab = ev.user[order], ev.ts[order], ev.item[order], ev.positive[order]
    dup = np.zeros(u.size, bool)
    dup[1:] = (u[1:] == u[:-1]) & (t[1:] == t[:-1]) & (i[1:] == i[:-1])
    u, t, i, lab = u[~dup], t[~dup], i[~dup], lab[~dup]
    new = np.ones(u.size, bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] != t[:-1])
    group = np.cumsum(new) - 1
    n_pos = np.bincount(group, weights=lab)
    n_all = np.bincount(group)
    ok = (n_pos > 0) & (n_pos < n_all)
    keep = ok[group]
    kept_groups = np.flatnonzero(ok)
    counts = n_all[kept_groups].astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    starts = np.flatnonzero(new)[kept_groups]
    return ImpressionSet(u[starts].astype(np.int64), indptr, i[keep].astype(np.int64), lab[keep].astype(bool))


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be 1-d arrays of the same length")
    if not labels.any():
        raise ValueError("an impression needs at least one clicked candidate")
    return scores, labels


def impression_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of (clicked, skipped) pairs ordered correctly, ties half; 1.0 when nothing was skipped."""
    scores, labels = _check(scores, labels)
    pos, neg = scores[labels], scores[~labels]
    if neg.size == 0:
        return 1.0
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _rank_order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")  # best first; ties keep the impression order


def impression_mrr(scores: np.ndarray, labels: np.ndarray) -> float:
    """MIND's MRR: sum over clicked candidates of 1 / rank (1-based, by descending score) / number clicked."""
    scores, labels = _check(scores, labels)
    ranked = labels[_rank_order(scores)]
    return float((ranked / np.arange(1, ranked.size + 1)).sum() / ranked.sum())


def impression_ndcg(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """nDCG@k with binary gains and log2(rank + 1) discounts; the ideal ranks every click first."""
    if k < 1:
        raise ValueError("k must be >= 1")
    scores, labels = _check(scores, labels)
    disc = 1.0 / np.log2(np.arange(2, min(k, labels.size) + 2))
    dcg = (labels[_rank_order(scores)][:k] * disc).sum()
    ideal = disc[: min(int(labels.sum()), k)].sum()
    return float(dcg / ideal)


def impression_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """All of ``IMPRESSION_METRICS`` for one impression (scores float [m], labels bool [m])."""
    return {"auc": impression_auc(scores, labels), "mrr": impression_mrr(scores, labels),
            "ndcg@5": impression_ndcg(scores, labels, 5), "ndcg@10": impression_ndcg(scores, labels, 10)}


def evaluate_impressions(model, imps: ImpressionSet, batch_size: int = 512) -> dict[str, float | int | None]:  # noqa: ANN001
    """Mean of each impression metric over the impressions of ``imps`` scored by ``model`` (Recommender
    contract: ``score(users) -> [B, n_items]``), plus ``n_impressions``. None when there are none."""
    out: dict[str, list[float]] = {m: [] for m in IMPRESSION_METRICS}
    for start in range(0, len(imps), batch_size):
        rows = np.arange(start, min(start + batch_size, len(imps)))
        users = imps.users[rows]
        with torch.inference_mode():
            scores = model.score(torch.as_tensor(users, dtype=torch.int64).to(model.device)).float().cpu().numpy()
        for j, r in enumerate(rows):
            a, b = imps.indptr[r], imps.indptr[r + 1]
            for name, v in impression_metrics(scores[j, imps.items[a:b]], imps.labels[a:b]).items():
                out[name].append(v)
    res: dict[str, float | int | None] = {m: (float(np.mean(v)) if v else None) for m, v in out.items()}
    res["n_impressions"] = len(imps)
    return res
