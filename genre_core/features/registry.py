"""Feature extractors by the name used in config (``features.<modality>.extractor``):
``@EXTRACTORS.register(name)`` on a ``FeatureExtractor`` that declares its section type as ``Config``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from genre_core.registry import Registry

if TYPE_CHECKING:
    from genre_core.features.base import FeatureExtractor

EXTRACTORS: Registry[FeatureExtractor] = Registry(
    "feature extractor", "features.<modality>.extractor",
    builtin=("genre_core.features.text", "genre_core.features.image", "genre_core.features.llm_encoder"),
)
