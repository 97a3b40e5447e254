"""The one ranking path of GENRE: seen-item masking + top-K, used by ``Recommender.recommend``, offline
evaluation (``genre_core.evaluation.evaluate``) and the recommend stage's blocked scoring
(``genre_core.recommend.partitions``).

**Seen items.** A user's *seen* items are the distinct items of the interactions the ranking is conditioned on,
given as one CSR row per ranked user; they get score -inf and are never recommended. Every caller builds that
CSR the same way from the interactions it ranks after: a model and offline evaluation use the model's training
histories (``Recommender.seen``: every training positive); the recommend stage uses the user's warehouse
positives (the ``events`` rules, ``genre_core.events``: explicit negatives such as MIND skips are not seen),
which are the same set when the model was trained on the warehouse's interactions (so evaluation
and published lists agree list for list, as tests/recommend/test_ranking_agreement.py checks).

**Ties and NaN.** ``torch.topk`` over float32 scores, largest first; NaN counts as -inf; a slot whose best score
is -inf (only seen or non-finite items left) is empty: item -1.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
NEG_INF = float("-inf")


@dataclass(frozen=True)
class CSR:
    """Per-row sets of column indices: row ``r`` holds ``indices[indptr[r]:indptr[r + 1]]`` (sorted, unique)."""

    indptr: np.ndarray  # int64 [n_rows + 1]
    indices: np.ndarray  # int64 [nnz]

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        """int64 [n_rows]: how many columns each row holds."""
        return np.diff(self.indptr)

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r] : self.indptr[r + 1]]

    def take(self, rows: np.ndarray) -> CSR:
        """A CSR of the given rows (int64 ``[m]``), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths()[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        within = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        return CSR(indptr=indptr, indices=self.indices[np.repeat(self.indptr[rows], lengths) + within])

    @classmethod
    def from_pairs(cls, rows: np.ndarray, cols: np.ndarray, n_rows: int) -> CSR:
        """Build from parallel arrays of (row, col) pairs; duplicates are dropped, rows may be empty."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if rows.shape != cols.shape or rows.ndim != 1:
            raise ValueError(f"rows and cols must be 1-D and of equal length, got {rows.shape} and {cols.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row index out of range [0, {n_rows}): min {rows.min()}, max {rows.max()}")
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        if rows.size:
            keep = np.ones(rows.size, dtype=bool)
            keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            rows, cols = rows[keep], cols[keep]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr=indptr, indices=cols)

    @classmethod
    def empty(cls, n_rows: int) -> CSR:
        return cls(indptr=np.zeros(n_rows + 1, dtype=np.int64), indices=np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class TopK:
    """Per-row top-K: ``items[i, r]`` is the (r+1)-th best column for row i, -1 where fewer than K exist."""

    items: np.ndarray  # int64 [n_rows, k]
    scores: np.ndarray  # float32 [n_rows, k], non-increasing per row; -inf where items == -1


def rank_block(scores: torch.Tensor, k: int, seen: CSR | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` of one block of scores after masking the seen items: THE ranking step.

    Args:
        scores: float ``[b, n_items]``, higher = better; modified in place (seen items set to -inf).
        k: list length, ``1 <= k <= n_items``.
        seen: optional CSR with ``b`` rows: the items to exclude per row.
    Returns:
        (item indices int64 ``[b, k]``, scores float32 ``[b, k]``, non-increasing per row), on the scores'
        device; -1 / -inf in slots that only excluded or non-finite items could fill.
    """
    scores = scores.to(dtype=torch.float32)
    if seen is not None and seen.indices.size:
        rows = torch.from_numpy(np.repeat(np.arange(seen.n_rows, dtype=np.int64), seen.lengths())).to(scores.device)
        scores[rows, torch.from_numpy(seen.indices).to(scores.device)] = NEG_INF
    vals, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    if torch.isnan(vals).any():  # topk ranks NaN first; a full pass only for blocks that have one
        scores.nan_to_num_(nan=NEG_INF, posinf=float("inf"), neginf=NEG_INF)
        vals, idx = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    idx[vals == NEG_INF] = -1
    return idx, vals


def topk_blocked(
    score_fn: ScoreFn,
    keys: np.ndarray,
    n_items: int,
    k: int,
    *,
    seen: CSR | None = None,
    device: torch.device | str = "cpu",
    block_size: int,
    progress: bool = False,
    desc: str = "scoring",
) -> TopK:
    """Top-``k`` columns of ``score_fn(keys)`` per row, computed ``block_size`` rows at a time.

    Args:
        score_fn: maps an int64 tensor ``[b]`` of keys (on ``device``) to a float tensor ``[b, n_items]``,
            higher = better. The returned tensor is modified in place, so it must not be shared state.
        keys: int64 ``[n]``, what ``score_fn`` receives per row (e.g. model user indices).
        n_items: number of columns ``score_fn`` returns.
        k: list length; capped at ``n_items``.
        seen: optional CSR with ``n`` rows aligned with ``keys``; those columns are excluded (set to -inf).
        block_size: rows per block (see ``device.block_rows``).
    Returns:
        TopK with ``[n, min(k, n_items)]`` arrays; NaN scores count as -inf; -inf entries get item -1.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if keys.ndim != 1:
        raise ValueError(f"keys must be 1-D, got shape {keys.shape}")
    if k < 1 or n_items < 1:
        raise ValueError(f"k and n_items must be >= 1, got k={k}, n_items={n_items}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if seen is not None and seen.n_rows != len(keys):
        raise ValueError(f"seen has {seen.n_rows} rows but there are {len(keys)} keys")
    device = torch.device(device)
    n, kk = len(keys), min(k, n_items)
    out_items = np.full((n, kk), -1, dtype=np.int64)
    out_scores = np.full((n, kk), NEG_INF, dtype=np.float32)
    starts = range(0, n, block_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc=desc, unit="block", disable=not progress):
            stop = min(start + block_size, n)
            scores = score_fn(torch.from_numpy(keys[start:stop]).to(device))
            if scores.shape != (stop - start, n_items):
                raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected {(stop - start, n_items)}")
            block_seen = None if seen is None else seen.take(np.arange(start, stop, dtype=np.int64))
            idx, vals = rank_block(scores, kk, block_seen)
            out_items[start:stop] = idx.cpu().numpy()
            out_scores[start:stop] = vals.cpu().numpy()
            del scores, vals, idx
    return TopK(items=out_items, scores=out_scores)


