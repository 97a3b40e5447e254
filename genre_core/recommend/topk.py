"""Explanations (``because_items``) and item-to-item neighbours (``similar_items``) on top of the one ranking
path, ``genre_core.ranking`` (blocked scoring, seen-item masking, top-K)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_core.ranking import CSR, NEG_INF, TopK, topk_blocked



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
