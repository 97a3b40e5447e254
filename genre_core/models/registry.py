"""Models by config name (``train.models: [popularity, itemknn, bpr, content, hybrid]``): ``@MODELS.register``.

Each model class declares its typed config section as ``Config``; ``train.<name>`` in YAML is validated
against it and the model receives that object (``build_model``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from genre_core.registry import Registry

if TYPE_CHECKING:
    from genre_core.models.base import IdMap, Recommender
    from genre_core.models.config import TrainConfig

MODELS: Registry[Recommender] = Registry(
    "model", "train.models",
    builtin=tuple(f"genre_core.models.{m}" for m in ("popularity", "itemknn", "bpr", "content", "hybrid",
                                                         "sasrec", "blend")),
)


def available_models() -> list[str]:
    """Every registered model name, sorted."""
    return MODELS.names()


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; unknown names raise ValueError listing the valid ones."""
    return MODELS.get(name)


def build_model(name: str, cfg: TrainConfig, idmap: IdMap) -> Recommender:
    """A fresh, untrained model ``name`` with its typed config section ``train.<name>`` and ``train.seed``."""
    return get_model_class(name)(idmap, cfg.section(name), seed=cfg.seed)
