"""Device, precision and memory sizing, shared by every stage that runs torch (features, LLM, train, recommend):
a stage resolves its configured device once (``resolve_device``) and passes the ``torch.device`` down."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import torch

_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


def resolve_device(name: str) -> torch.device:
    """Map a config device name to a ``torch.device``.

    ``"auto"`` -> ``cuda`` when CUDA is available, else ``cpu``; ``"cpu"``; ``"cuda"`` or ``"cuda:N"``, which
    raise RuntimeError when CUDA (or GPU N) is not available rather than silently falling back to the CPU.
    """
    if not isinstance(name, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {name!r}")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or _CUDA_INDEX.match(key):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was requested but CUDA is not available here; use 'auto' or 'cpu'")
        index = int(key.split(":")[1]) if ":" in key else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N")


def cpu_has_bf16_matmul() -> bool:
    """True when this CPU runs bfloat16 matrix products natively (AMX-BF16 or AVX512-BF16; Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (auto|fp32|fp16|bf16) on ``device``; None means plain fp32.

    Autocast is used on CUDA only (CPU inference stays fp32). ``auto`` picks bf16 where the GPU supports it,
    else fp16.
    """
    if precision not in ("auto", "fp32", "fp16", "bf16"):
        raise ValueError(f"unknown precision {precision!r}; valid: auto, fp32, fp16, bf16")
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def inference_context(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.inference_mode()`` plus autocast to ``dtype`` on CUDA when ``dtype`` is given."""
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield


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


@contextlib.contextmanager
def torch_threads(n: int | None, device: torch.device) -> Iterator[None]:
    """Use ``n`` torch threads while working on the CPU (``None`` or a GPU device: leave torch's setting), then
    restore the previous setting (``train.cpu_threads`` for the train and tune stages)."""
    before = torch.get_num_threads()
    if device.type == "cpu" and n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
