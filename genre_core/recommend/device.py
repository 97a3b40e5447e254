"""Memory sizing for blocked scoring; the device itself is resolved by the shared resolver."""
from __future__ import annotations

import torch

from genre_core.features.device import resolve_device

__all__ = ["block_budget_bytes", "block_rows", "resolve_device"]


def block_budget_bytes(device: torch.device, memory_budget_mb: int, cuda_memory_fraction: float) -> int:
    """Bytes one block of scores may use: the CPU budget, or a fraction of the free memory on a CUDA device."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return max(int(free * cuda_memory_fraction), 1 << 20)
    return int(memory_budget_mb) << 20


def block_rows(n_cols: int, budget_bytes: int, n_rows: int, bytes_per_cell: int = 12) -> int:
    """Rows per block so that ``rows * n_cols * bytes_per_cell`` stays within the budget (at least 1).

    ``bytes_per_cell`` covers the float32 score block plus the temporaries of masking and ``torch.topk``
    (measured peak on CPU is about 2-3 score copies).
    """
    if n_cols < 1:
        raise ValueError(f"n_cols must be >= 1, got {n_cols}")
    rows = budget_bytes // (n_cols * bytes_per_cell)
    return int(max(1, min(rows, max(n_rows, 1))))
