"""Feature extractor ``category-hash``: a hashed multi-hot vector of an item's categories."""
from __future__ import annotations

import zlib

import polars as pl
import torch
from pydantic import Field

from genre_core.features.base import Content, FeatureExtractor, sha256_text
from genre_core.features.config import ModalityConfig
from genre_core.features.registry import EXTRACTORS


class CategoryHashConfig(ModalityConfig):
    """``features.<modality>`` with ``extractor: category-hash``."""

    dim: int = Field(16, ge=2)  # hash buckets


@EXTRACTORS.register("category-hash")
class CategoryHash(FeatureExtractor):
    Config = CategoryHashConfig

    @property
    def model_id(self) -> str:
        return f"category-hash-{self.section.dim}"

    def prepare(self, items: pl.DataFrame) -> list[Content]:
        return [Content(r["item_id"], sha256_text(r["category"] or ""), (r["category"] or "").split("|"))
                for r in items.iter_rows(named=True)]

    def encode(self, inputs: list[list[str]]) -> torch.Tensor:
        out = torch.zeros(len(inputs), self.section.dim)
        for i, tags in enumerate(inputs):
            for t in tags:
                out[i, zlib.crc32(t.encode()) % self.section.dim] = 1.0
        out[:, 0] += 1e-3  # no all-zero rows (an item without categories)
        return out
