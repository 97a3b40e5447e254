"""What every LLM backend shares: request/result types, output limits, failures as data, the registry."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from genre_core.llm.config import LLMConfig
from genre_core.llm.safety import clean_output
from genre_core.registry import Registry


@dataclass(frozen=True)
class LLMRequest:
    """One chat generation: a system and a user message, and the output length limit in tokens."""

    key: str  # prompt hash, the cache key
    system: str
    user: str
    max_new_tokens: int


@dataclass(frozen=True)
class LLMResult:
    """The outcome of one request. ``status`` is ``ok`` (``output`` set) or ``failed`` (``error`` says why);
    ``tokens`` = prompt + completion tokens spent (0 when nothing reached the model); ``attempts`` = HTTP tries."""

    output: str | None
    status: str
    error: str | None = None
    tokens: int = 0
    attempts: int = 1

    @staticmethod
    def failed(error: str, tokens: int = 0, attempts: int = 1) -> LLMResult:
        return LLMResult(None, "failed", error, tokens, attempts)


def limit_chars(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, at the last word boundary when there is one."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip(" ,;:-")


class LLMBackend(ABC):
    """Base class: subclasses implement ``_generate`` for a chunk of requests; the base cleans outputs
    (``safety.clean_output``: no markup or control characters), applies the output limits, turns empty
    answers and exceptions into recorded failures, and estimates token costs."""

    name: ClassVar[str]

    def __init__(self, cfg: LLMConfig) -> None:
        self.cfg = cfg

    @property
    def model_id(self) -> str:
        """The model part of the cache key (``llm_outputs.model``)."""
        return self.cfg.model

    @property
    def chunk_size(self) -> int:
        """How many requests one ``generate`` call should get (the pipeline checks the budget between chunks)."""
        return self.cfg.batch_size

    def count_prompt_tokens(self, request: LLMRequest) -> int:
        """Prompt tokens of ``request``; the base estimates ~4 characters per token, subclasses count exactly."""
        return (len(request.system) + len(request.user)) // 4 + 8

    def max_cost(self, request: LLMRequest) -> int:
        """An upper bound of the tokens ``request`` can spend (prompt + output limit)."""
        return self.count_prompt_tokens(request) + request.max_new_tokens

    @abstractmethod
    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """One result per request, in order. May raise: the base records the error for the whole chunk."""

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """Generate for ``requests`` (one result each, in order); never raises for a generation failure."""
        if not requests:
            return []
        try:
            results = self._generate(requests)
        except Exception as exc:  # noqa: BLE001 - a failed generation is recorded with its reason, the run goes on
            reason = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}")[:500]
            return [LLMResult.failed(reason, 0, 1) for _ in requests]
        if len(results) != len(requests):
            raise RuntimeError(f"backend {self.name} returned {len(results)} results for {len(requests)} requests")
        out: list[LLMResult] = []
        for res in results:
            if res.status == "ok":
                text = limit_chars(clean_output(res.output or ""), self.cfg.max_output_chars)
                res = LLMResult(text, "ok", None, res.tokens, res.attempts) if text else LLMResult.failed(
                    "empty output", res.tokens, res.attempts)
            out.append(res)
        return out

    def close(self) -> None:
        """Release clients / memory. The base holds nothing."""


BACKENDS: Registry[LLMBackend] = Registry(
    "llm backend", "llm.backend",
    builtin=("genre_core.llm.backends", "genre_core.llm.backends.local", "genre_core.llm.backends.openai_compat",
             "genre_core.llm.backends.ctranslate2", "genre_core.llm.backends.engine"),
)
