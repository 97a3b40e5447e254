"""The ``ctranslate2`` backend: a local causal LM run by CTranslate2 (int8 weights on CPU), batched greedy.

``llm.model`` is what the ``transformers`` backend accepts (``smollm2``, a hub name, a local folder). The model is
converted once with ``ctranslate2.converters.TransformersConverter`` (quantization ``llm.compute_type``) into
``$GENRE_HOME/cache/llm/ct2/<name>-<quantization>-<source hash>``: written to a temporary folder and renamed into
place, so an interrupted conversion leaves nothing half-written; later runs load the cached folder (< 1 s).
The tokenizer and chat template come from the source (``AutoTokenizer``), exactly as in the transformers backend.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genre_core.llm.backends.base import BACKENDS, LLMRequest, LLMResult
from genre_core.llm.backends.local import TransformersBackend
from genre_core.llm.config import LLMConfig
from genre_core.paths import genre_home

log = logging.getLogger(__name__)

_WEIGHT_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "genre_source.json")


def source_key(source: str, quantization: str) -> str:
    """Cache folder name for ``source`` (a local folder or a hub name) at ``quantization``: a readable slug
    plus a hash of the source identity (folder path and its weight files' sizes and mtimes, or the name)."""
    path = Path(source)
    ident: dict[str, Any] = {"source": str(path.resolve()) if path.is_dir() else source, "q": quantization}
    if path.is_dir():
        for name in _WEIGHT_FILES:
            f = path / name
            if f.is_file():
                st = f.stat()
                ident[name] = [st.st_size, st.st_mtime_ns]
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name if path.is_dir() else source)[-60:] or "model"
    return f"{slug}-{quantization}-{digest}"


def converted_ct2(source: str, quantization: str, cache_root: Path | None = None) -> Path:
    """The CTranslate2 copy of the causal LM ``source`` at ``quantization``, converted on first use and reused.

    Raises RuntimeError naming the source when the converter cannot load or convert it.
    """
    target = (cache_root or genre_home() / "cache" / "llm" / "ct2") / source_key(source, quantization)
    if (target / "model.bin").is_file() and (target / "genre_source.json").is_file():
        return target
    from ctranslate2.converters import TransformersConverter  # noqa: PLC0415 - imports torch/transformers

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.warning("converting %s to CTranslate2 (%s) under %s (once)", source, quantization, target)
    try:
        TransformersConverter(source, low_cpu_mem_usage=True).convert(str(tmp), quantization=quantization, force=True)
    except Exception as exc:  # noqa: BLE001 - any converter failure becomes one clear message
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"cannot convert llm.model source {source!r} to CTranslate2 ({quantization}): "
                           f"{type(exc).__name__}: {exc}") from exc
    (tmp / "genre_source.json").write_text(json.dumps({"source": source, "quantization": quantization}))
    if target.exists():  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


@BACKENDS.register("ctranslate2")
class CTranslate2Backend(TransformersBackend):
    """CTranslate2 ``Generator``: ``llm.compute_type`` weights, ``llm.cpu_threads`` intra-op threads, one
    ``generate_batch`` per chunk (``max_batch_size = llm.batch_size``), greedy unless ``llm.temperature > 0``.

    Tokenizer loading, chat-template rendering and prompt token counting are the transformers backend's.
    """

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__(cfg)
        self._generator: Any = None
        self._context: int | None = None

    @property
    def model_id(self) -> str:
        return f"{self.base_model_id}@ct2-{self.cfg.compute_type}"

    def cpu_layout(self) -> tuple[int, int]:
        """(parallel batch workers, threads per worker) on CPU. ``llm.ct2_workers`` (default: ``llm.cpu_threads``)
        batches run at once, each on ``cpu_threads // workers`` threads: for a small model, whole batches side by
        side keep every core busy where splitting each small matrix product over threads mostly waits
        (docs/bench-llm.md). ``cpu_threads`` None: one worker on the engine's default threads."""
        total = self.cfg.cpu_threads
        if total is None:
            return max(1, self.cfg.ct2_workers or 1), 0
        workers = max(1, min(self.cfg.ct2_workers or total, total))
        return workers, max(1, total // workers)

    @property
    def chunk_size(self) -> int:
        """One ``generate`` call feeds every worker a batch of ``llm.batch_size``."""
        return self.cfg.batch_size * (self.cpu_layout()[0] if self.ct2_device() == "cpu" else 1)

    def ct2_device(self) -> str:
        """``cuda`` when the resolved device is a GPU that CTranslate2 sees, else ``cpu``."""
        import ctranslate2  # noqa: PLC0415

        return "cuda" if self.device.type == "cuda" and ctranslate2.get_cuda_device_count() > 0 else "cpu"

    def _load_model(self) -> Any:
        if self._generator is None:
            import ctranslate2  # noqa: PLC0415

            src = self.source()
            folder = converted_ct2(src, self.cfg.compute_type)
            device = self.ct2_device()
            workers, threads = self.cpu_layout() if device == "cpu" else (1, 0)
            self._generator = ctranslate2.Generator(str(folder), device=device, compute_type=self.cfg.compute_type,
                                                    inter_threads=workers, intra_threads=threads)
            cfg_file = Path(src) / "config.json"
            if cfg_file.is_file():
                self._context = json.loads(cfg_file.read_text()).get("max_position_embeddings")
        return self._generator

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        import ctranslate2  # noqa: PLC0415

        tok, gen = self._load_tokenizer(), self._load_model()
        results, ids, idx = self.encode_within(requests, self._context)
        prompts = [tok.convert_ids_to_tokens(p) for p in ids]
        if not idx:
            return [r for r in results if r is not None]
        greedy = self.cfg.temperature <= 0
        if not greedy:
            ctranslate2.set_random_seed(self.cfg.seed)
        eos = tok.eos_token_id
        workers = self.cpu_layout()[0] if self.ct2_device() == "cpu" else 1  # one batch per worker at once
        out = gen.generate_batch(
            prompts, max_batch_size=min(self.cfg.batch_size, -(-len(prompts) // workers)),
            max_length=max(requests[i].max_new_tokens for i in idx),
            include_prompt_in_result=False, sampling_topk=1 if greedy else 0,
            sampling_temperature=self.cfg.temperature if not greedy else 1.0,
            repetition_penalty=self.cfg.repetition_penalty, no_repeat_ngram_size=self.cfg.no_repeat_ngram_size,
            end_token=[eos] if eos is not None else None)
        stop = {t for t in (eos, tok.pad_token_id) if t is not None}
        for row, i in enumerate(idx):
            ids = list(out[row].sequences_ids[0])[: requests[i].max_new_tokens]
            n = next((j for j, t in enumerate(ids) if t in stop), len(ids))
            text = tok.decode(ids[:n], skip_special_tokens=True)
            results[i] = LLMResult(text, "ok", None, len(prompts[row]) + n)
        return [r if r is not None else LLMResult.failed("not generated") for r in results]

    def close(self) -> None:
        self._generator = None
