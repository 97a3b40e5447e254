"""Partitioning helpers for the heavy stages (embedding, scoring); plain functions, no engine imports.

The flows decide *where* partitions run (``execution.runner``: in process, or as Prefect tasks on a Dask
cluster); the library only cuts work into contiguous, independent partitions and merges the results, so the
local and the distributed path run exactly the same per-partition code.
"""
from __future__ import annotations

import multiprocessing


def partition_bounds(n: int, partitions: int) -> list[tuple[int, int]]:
    """Cut ``range(n)`` into at most ``partitions`` contiguous ``(start, stop)`` ranges of near-equal size.

    No range is empty: ``n = 0`` gives ``[]`` and ``n < partitions`` gives ``n`` ranges of one row each.
    Sizes differ by at most one (the first ``n % parts`` ranges are one longer).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    parts = min(partitions, n)
    if parts == 0:
        return []
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for p in range(parts):
        stop = start + base + (1 if p < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def in_daemon_process() -> bool:
    """True inside a daemonic process (e.g. a Dask worker), which may not start child processes of its own."""
    return bool(multiprocessing.current_process().daemon)
