"""Extractors registered by the name used in config (``features.<modality>.extractor``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from genre_core.features.base import FeatureExtractor

E = TypeVar("E", bound="type[FeatureExtractor]")

EXTRACTORS: dict[str, type[FeatureExtractor]] = {}


def register_extractor(name: str) -> Callable[[E], E]:
    """Class decorator: make an extractor available under ``name``. Names are unique."""

    def deco(cls: E) -> E:
        if name in EXTRACTORS and EXTRACTORS[name] is not cls:
            raise ValueError(f"extractor name {name!r} is already registered by {EXTRACTORS[name].__name__}")
        cls.name = name
        EXTRACTORS[name] = cls
        return cls

    return deco


def _load_builtin() -> None:
    # importing the modules registers the built-in extractors; done lazily so config loading stays light
    from genre_core.features import image, llm_encoder, text  # noqa: F401, PLC0415


def get_extractor(name: str) -> type[FeatureExtractor]:
    """The extractor class registered under ``name``; an unknown name raises ValueError listing valid names."""
    _load_builtin()
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ValueError(f"unknown feature extractor {name!r}; valid: {', '.join(sorted(EXTRACTORS))}") from None


def available_extractors() -> list[str]:
    """Sorted names of all registered extractors."""
    _load_builtin()
    return sorted(EXTRACTORS)
