"""LLM backends, registered by the name used in ``llm.backend``: ``transformers``, ``ctranslate2``, ``openai``, ``none``."""
from __future__ import annotations

from collections.abc import Sequence

from genre_core.llm.backends.base import BACKENDS, LLMBackend, LLMRequest, LLMResult, register_backend
from genre_core.llm.config import LLMConfig


@register_backend("none")
class NoneBackend(LLMBackend):
    """Generates nothing: every request is a recorded failure. The pipeline skips the stage before using it."""

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        return [LLMResult.failed("llm.backend is 'none'", 0, 0) for _ in requests]


# imported for their registration side effect (heavy libraries load lazily inside them)
from genre_core.llm.backends import ctranslate2 as _ct2  # noqa: E402,F401
from genre_core.llm.backends import local as _local  # noqa: E402,F401
from genre_core.llm.backends import openai_compat as _openai  # noqa: E402,F401


def backend_names() -> list[str]:
    """The valid values of ``llm.backend``."""
    return sorted(BACKENDS)


def get_backend(cfg: LLMConfig) -> LLMBackend:
    """Instantiate the backend named by ``cfg.backend`` (models load lazily, on first generation)."""
    cls = BACKENDS.get(cfg.backend)
    if cls is None:
        raise ValueError(f"unknown llm backend {cfg.backend!r}; valid: {', '.join(backend_names())}")
    return cls(cfg)


__all__ = ["BACKENDS", "LLMBackend", "LLMRequest", "LLMResult", "backend_names", "get_backend", "register_backend"]
