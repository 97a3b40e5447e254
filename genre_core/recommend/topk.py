"""Blocked scoring + top-K, seen-item exclusion, explanations and item-to-item neighbours.

Everything here is generic over a ``score_fn(keys_block) -> scores`` callable, so any model (or a popularity
vector, or a content profile) goes through the same code path. A block of users is scored at once
(``[b, n_items]`` float32), already-seen items are set to ``-inf`` inside the block from a CSR of seen items,
and ``torch.topk`` keeps the best ``k`` (a partial selection, never a sort of the catalogue). Memory is bounded by
the block size, which follows the memory budget, not by users x items.
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


def _mask_block(scores: torch.Tensor, seen: CSR, start: int, stop: int) -> None:
    """Set ``scores[i, seen items of row start+i] = -inf`` in place for a block of rows."""
    lo, hi = int(seen.indptr[start]), int(seen.indptr[stop])
    if hi == lo:
        return
    counts = torch.from_numpy(np.diff(seen.indptr[start : stop + 1])).to(scores.device)
    local_rows = torch.repeat_interleave(torch.arange(stop - start, device=scores.device), counts)
    cols = torch.from_numpy(seen.indices[lo:hi]).to(scores.device)
    scores[local_rows, cols] = NEG_INF


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
            scores = scores.to(dtype=torch.float32)
            if seen is not None:
                _mask_block(scores, seen, start, stop)
            vals, idx = torch.topk(scores, kk, dim=1, largest=True, sorted=True)
            if torch.isnan(vals).any():  # topk ranks NaN first; a full pass only for blocks that have one
                scores.nan_to_num_(nan=NEG_INF, posinf=float("inf"), neginf=NEG_INF)
                vals, idx = torch.topk(scores, kk, dim=1, largest=True, sorted=True)
            idx[vals == NEG_INF] = -1
            out_items[start:stop] = idx.cpu().numpy()
            out_scores[start:stop] = vals.cpu().numpy()
            del scores, vals, idx
    return TopK(items=out_items, scores=out_scores)


def _history_blocks(lengths: np.ndarray, per_cell: int, budget_bytes: int) -> list[tuple[int, int]]:
    """Split rows (sorted by ascending history length) into blocks with ``rows * max_len * per_cell <= budget``."""
    blocks, s, n = [], 0, len(lengths)
    while s < n:
        e = min(n, s + max(1, budget_bytes // (per_cell * max(int(lengths[s]), 1))))
        while e > s + 1 and (e - s) * max(int(lengths[e - 1]), 1) * per_cell > budget_bytes:
            e = s + max(1, budget_bytes // (per_cell * max(int(lengths[e - 1]), 1)))
        blocks.append((s, e))
        s = e
    return blocks


def because_items(
    item_vectors: torch.Tensor,
    history: CSR,
    rec_items: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    budget_bytes: int = 256 << 20,
    progress: bool = False,
) -> np.ndarray:
    """For each recommended item, the history item with the highest dot product to it (the explanation).

    Args:
        item_vectors: float ``[n_items, d]``.
        history: CSR with one row per row of ``rec_items``; columns are item indices.
        rec_items: int64 ``[n, k]`` recommended item indices, -1 for empty slots.
    Returns:
        int64 ``[n, k]``: an item index from the row's history, -1 where the row has no history or the slot is empty.
    """
    if rec_items.ndim != 2 or history.n_rows != rec_items.shape[0]:
        raise ValueError(f"rec_items {rec_items.shape} must be [n, k] with n == history rows ({history.n_rows})")
    device = torch.device(device)
    n, k = rec_items.shape
    out = np.full((n, k), -1, dtype=np.int64)
    lengths = history.lengths()
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    if order.size == 0 or k == 0:
        return out
    vecs = item_vectors.to(device=device, dtype=torch.float32)
    d = vecs.shape[1]
    blocks = _history_blocks(lengths[order], 4 * (d + k), budget_bytes)
    with torch.inference_mode():
        for s, e in tqdm(blocks, desc="explaining", unit="block", disable=not progress):
            rows = order[s:e]
            lens = lengths[rows]
            hmax = int(lens.max())
            valid = np.arange(hmax)[None, :] < lens[:, None]
            offsets = history.indptr[rows][:, None] + np.arange(hmax)[None, :]
            hist = np.zeros((len(rows), hmax), dtype=np.int64)
            hist[valid] = history.indices[offsets[valid]]
            hist_t = torch.from_numpy(hist).to(device)
            recs = torch.from_numpy(rec_items[rows]).to(device)
            sims = torch.bmm(vecs[recs.clamp(min=0)], vecs[hist_t].transpose(1, 2))  # [b, k, hmax]
            sims.masked_fill_(~torch.from_numpy(valid).to(device)[:, None, :], NEG_INF)
            best = hist_t.gather(1, sims.argmax(dim=2))  # [b, k]
            best[recs < 0] = -1
            out[rows] = best.cpu().numpy()
    return out


def similar_items(
    item_vectors: torch.Tensor,
    k: int,
    *,
    device: torch.device | str = "cpu",
    block_size: int,
    progress: bool = False,
    rows: tuple[int, int] | None = None,
) -> TopK:
    """Item-to-item top-``k`` by cosine similarity of ``item_vectors`` ``[n_items, d]``, excluding the item itself.

    ``rows = (start, stop)`` computes the neighbours of items ``start..stop-1`` only (one partition of the
    catalogue; every item is still a candidate). Returns TopK with ``[stop - start, min(k, n_items - 1)]``
    arrays, ``[n_items, ...]`` by default (needs at least 2 items).
    """
    if item_vectors.ndim != 2 or item_vectors.shape[0] < 2:
        raise ValueError(f"item_vectors must be [n_items >= 2, d], got {tuple(item_vectors.shape)}")
    device = torch.device(device)
    n = item_vectors.shape[0]
    start, stop = rows if rows is not None else (0, n)
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows {rows} out of range for {n} items")
    unit = torch.nn.functional.normalize(item_vectors.to(device=device, dtype=torch.float32), dim=1)
    keys = np.arange(start, stop, dtype=np.int64)
    itself = CSR(indptr=np.arange(stop - start + 1, dtype=np.int64), indices=keys)
    return topk_blocked(
        lambda idx: unit[idx] @ unit.T,
        keys,
        n,
        min(k, n - 1),
        seen=itself,
        device=device,
        block_size=block_size,
        progress=progress,
        desc="similar items",
    )
