"""The ``llama_engine`` backend: GENRE's batched CPU engine for Llama-style models (``genre_core.llm.llama_engine``).

Same model sources, tokenizer and chat template as the ``transformers`` backend (``llm.model``: ``smollm2``, a hub
name or a local folder); the weights are taken from the loaded ``transformers`` model once. ``llm.dtype``: ``auto``
= bfloat16 weights with float32 norms/softmax where the CPU multiplies bfloat16 natively (AMX / AVX512-BF16), else
float32; ``fp32`` reproduces the ``transformers`` backend's greedy tokens of an unpadded prompt. Speed and agreement
against the other engines: ``python -m bench.llm`` (docs/bench-llm.md).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from genre_core.llm.backends.base import BACKENDS, LLMRequest, LLMResult
from genre_core.llm.backends.local import TransformersBackend
from genre_core.llm.config import LLMConfig

log = logging.getLogger(__name__)

# a generate() call gets this many batches of prompts, so finished rows can be refilled (continuous batching)
CHUNK_BATCHES = 4


@BACKENDS.register("llama_engine")
class LlamaEngineBackend(TransformersBackend):
    """Batched generation with a shared-prefix cache, no padding waste and continuous batching, on CPU."""

    def __init__(self, cfg: LLMConfig) -> None:
        if cfg.repetition_penalty != 1.0 or cfg.no_repeat_ngram_size:
            raise ValueError("llm.repetition_penalty / llm.no_repeat_ngram_size are not supported by "
                             "llm.backend=llama_engine; use llm.backend=transformers for them")
        if cfg.dtype == "fp16":
            raise ValueError("llm.dtype=fp16 is not supported by llm.backend=llama_engine (CPU): use bf16 or fp32")
        super().__init__(cfg)
        self._stop: set[int] = set()
        if self.device.type != "cpu":
            log.warning("llm.backend=llama_engine runs on the CPU (device %s ignored); on a GPU use transformers "
                        "or a vLLM server (llm.backend=openai)", self.device)
            import torch  # noqa: PLC0415

            self.device = torch.device("cpu")
        self._engine: Any = None

    @property
    def engine_dtype(self) -> str:
        """``bf16`` or ``fp32``: what ``llm.dtype`` means for this engine on this CPU."""
        from genre_core.device import cpu_has_bf16_matmul  # noqa: PLC0415

        if self.cfg.dtype == "auto":
            return "bf16" if cpu_has_bf16_matmul() else "fp32"
        return self.cfg.dtype

    @property
    def model_id(self) -> str:
        """The cache key's model: ``@engine-bf16`` / ``@engine-fp32`` (bfloat16 changes the greedy wording)."""
        return f"{self.base_model_id}@engine-{self.engine_dtype}"

    @property
    def cpu_bf16(self) -> bool:
        return False  # the transformers model is only a weight source here: load it in float32

    @property
    def chunk_size(self) -> int:
        return self.cfg.batch_size * CHUNK_BATCHES

    def _load_model(self) -> Any:
        if self._engine is None:
            import torch  # noqa: PLC0415

            from genre_core.device import cpu_has_bf16_matmul  # noqa: PLC0415
            from genre_core.llm.llama_engine import LlamaEngine  # noqa: PLC0415

            dtype = self.engine_dtype
            if dtype == "bf16" and not cpu_has_bf16_matmul():
                log.warning("llm.dtype=bf16 on a CPU without AMX or AVX512-BF16: bfloat16 products are emulated "
                            "there and slower than float32")
            model = super()._load_model()
            try:
                self._engine = LlamaEngine(model, torch.bfloat16 if dtype == "bf16" else torch.float32)
            except ValueError as exc:
                raise RuntimeError(f"llm.model={self.cfg.model!r}: {exc}; use llm.backend=transformers for it") \
                    from exc
            # the end tokens of the model's generation config (a list for some chat models), as transformers stops
            eos = model.generation_config.eos_token_id
            self._stop = set(eos if isinstance(eos, list) else [eos]) - {None}
            self._model = None  # the engine holds its own copy of the weights
        return self._engine

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        tok, engine = self._load_tokenizer(), self._load_model()
        results, prompts, idx = self.encode_within(requests, engine.max_positions)
        if idx:
            stop = self._stop | {t for t in (tok.eos_token_id, tok.pad_token_id) if t is not None}
            with self.cpu_threads():
                outs = engine.generate(prompts, [requests[i].max_new_tokens for i in idx], stop,
                                       batch_size=self.cfg.batch_size, temperature=self.cfg.temperature,
                                       seed=self.cfg.seed)
            for row, i in enumerate(idx):
                ids = outs[row]
                stopped = len(ids) < requests[i].max_new_tokens
                text = tok.decode(ids, skip_special_tokens=True)
                results[i] = LLMResult(text, "ok", None, len(prompts[row]) + len(ids) + int(stopped))
        return [r if r is not None else LLMResult.failed("not generated") for r in results]

    def close(self) -> None:
        self._engine = None
        self._model = None
