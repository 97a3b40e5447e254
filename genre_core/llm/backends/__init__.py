"""LLM backends, registered by the name used in ``llm.backend``: ``transformers``, ``ctranslate2``, ``openai``, ``none``."""
from __future__ import annotations

from collections.abc import Sequence

from genre_core.llm.backends.base import BACKENDS, LLMBackend, LLMRequest, LLMResult
from genre_core.llm.config import LLMConfig


@BACKENDS.register("none")
class NoneBackend(LLMBackend):
    """Generates nothing: every request is a recorded failure. The pipeline skips the stage before using it."""

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        return [LLMResult.failed("llm.backend is 'none'", 0, 0) for _ in requests]


def get_backend(cfg: LLMConfig) -> LLMBackend:
    """Instantiate the backend named by ``cfg.backend`` (models load lazily, on first generation)."""
    return BACKENDS.get(cfg.backend)(cfg)


__all__ = ["BACKENDS", "LLMBackend", "LLMRequest", "LLMResult", "get_backend"]
