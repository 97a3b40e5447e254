"""Device resolution shared by all stages, and the autocast dtype choice."""
from __future__ import annotations

import pytest
import torch

from genre_core.device import autocast_dtype, resolve_device

HAS_CUDA = torch.cuda.is_available()


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_unknown_device_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'; valid: auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised where CUDA is absent")
def test_cuda_without_cuda_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_cpu_runs_fp32_and_precision_names_are_checked() -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "fp16") is None
    assert autocast_dtype(torch.device("cuda"), "fp32") is None
    assert autocast_dtype(torch.device("cuda"), "fp16") is torch.float16
    assert autocast_dtype(torch.device("cuda"), "bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_dtype(cpu, "int8")


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_resolves_and_auto_precision_picks_a_half_type() -> None:
    dev = resolve_device("cuda")
    assert dev.type == "cuda"
    assert autocast_dtype(dev, "auto") in (torch.bfloat16, torch.float16)
