"""Models by config name: ``train.models: [popularity, itemknn, bpr, content, hybrid]``."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from genre_core.models.base import IdMap, Recommender
    from genre_core.models.config import TrainConfig

MODEL_REGISTRY: dict[str, type[Recommender]] = {}
_BUILTIN = ("popularity", "itemknn", "bpr", "content", "hybrid", "sasrec", "blend")
T = TypeVar("T", bound="type[Recommender]")


def register(cls: T) -> T:
    """Class decorator: make a Recommender subclass available under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no `name`")
    if cls.name in MODEL_REGISTRY and MODEL_REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    MODEL_REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(f"genre_core.models.{module}")


def available_models() -> list[str]:
    """Every registered model name, sorted."""
    _load_builtin()
    return sorted(MODEL_REGISTRY)


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``; unknown names raise ValueError listing the valid ones."""
    _load_builtin()
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODEL_REGISTRY))}") from None


def build_model(name: str, cfg: TrainConfig, idmap: IdMap) -> Recommender:
    """A fresh, untrained model ``name`` with its config section ``train.<name>`` and ``train.seed``."""
    cls = get_model_class(name)
    section = getattr(cfg, name, None)
    params = section.model_dump(mode="json") if section is not None and hasattr(section, "model_dump") else {}
    if hasattr(cls, "member_params"):  # a blend also carries its members' sections
        params = {**params, "member_params": cls.member_params(cfg)}
    return cls(idmap, params, seed=cfg.seed)
