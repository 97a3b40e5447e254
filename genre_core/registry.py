"""One registry idiom for every extension point: models, feature extractors, LLM backends, dataset readers and
publish targets.

A ``Registry`` maps the name used in config to a class::

    MODELS = Registry("model", "train.models", builtin=("genre_core.models.bpr", ...))

    @MODELS.register("bpr")
    class BPRMF(TorchRecommender):
        Config = BPRConfig          # its typed config section (train.bpr)

``get(name)`` returns the class or raises ``ValueError`` listing the valid names; ``names()`` lists them.
Built-in classes register when their module is imported; the registry imports ``builtin`` modules lazily, on
first lookup, so loading a config stays light. Out-of-tree classes register the same way from a module named in
the config's top-level ``plugins:`` list (imported by ``genre_core.config.load_config`` before validation).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind by config name.

    Args:
        kind: what is registered, for messages ("model", "dataset reader", ...).
        config_key: where the name appears in config ("train.models", "dataset.reader", ...), for messages.
        builtin: modules whose import registers the built-in classes (imported on first lookup).
    """

    def __init__(self, kind: str, config_key: str, builtin: Iterable[str] = ()) -> None:
        self.kind = kind
        self.config_key = config_key
        self._builtin = tuple(builtin)
        self._loaded = False
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make ``cls`` available under ``name`` (sets ``cls.name``). Names are unique."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def deco(cls: type[T]) -> type[T]:
            current = self._classes.get(name)
            if current is not None and (current.__module__, current.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"{self.kind} name {name!r} is already registered by {current.__qualname__}")
            cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return deco

    def _load_builtin(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtin:
                importlib.import_module(module)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_builtin()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._load_builtin()
        return name in self._classes

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; an unknown name raises ValueError listing the valid ones."""
        self._load_builtin()
        try:
            return self._classes[name]
        except KeyError:
            raise ValueError(self.unknown(name)) from None

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests that register a throw-away class)."""
        self._classes.pop(name, None)

    def check(self, name: str) -> str:
        """``name`` if registered (for config validators), else ValueError listing the valid names."""
        self.get(name)
        return name

    def unknown(self, name: object) -> str:
        """The message for an unknown ``name``."""
        return f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"


def import_plugins(modules: Iterable[str]) -> None:
    """Import each plugin module (its classes register on import); a missing module raises ValueError."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"plugins: cannot import {module!r}: {exc}") from None


def typed_section(cls: type, where: str, value: Any) -> BaseModel:
    """Validate one plugin config section ``value`` (a mapping) against ``cls.Config``; ValueError naming
    ``where`` (the key path) when the class declares no ``Config`` or a key/value is wrong."""
    config = getattr(cls, "Config", None)
    if config is None:
        raise ValueError(f"{where}: {cls.__qualname__} takes no config section")
    if isinstance(value, config):
        return value
    try:
        return config.model_validate(value if value is not None else {})
    except Exception as exc:  # pydantic.ValidationError: re-raised with the key path in front
        errors = getattr(exc, "errors", None)
        if callable(errors):
            detail = "; ".join(f"{where}.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors())
            raise ValueError(detail) from None
        raise


def validate_plugin_sections(owner: BaseModel, registry: Registry[Any], where: str) -> None:
    """Validate every extra key of ``owner`` (a section with ``extra="allow"``) as ``<where>.<name>``: the name
    must be registered in ``registry`` and the value is replaced by the class's typed ``Config``."""
    extra = owner.__pydantic_extra__ or {}
    for key, value in list(extra.items()):
        if key not in registry:
            raise ValueError(f"{where}.{key}: unknown key (neither a setting of {where} nor a registered "
                             f"{registry.kind}; {registry.kind}s: {', '.join(registry.names())})")
        extra[key] = typed_section(registry.get(key), f"{where}.{key}", value)


def section_for(owner: BaseModel, registry: Registry[Any], name: str) -> BaseModel | None:
    """The typed section ``name`` of ``owner`` (a typed field or a validated plugin section), else the class's
    ``Config`` defaults; None when the class declares no ``Config`` or its ``Config`` has required settings."""
    config = getattr(registry.get(name), "Config", None)
    value = getattr(owner, name, None) if name in type(owner).model_fields else (owner.__pydantic_extra__ or {}).get(name)
    if config is None or isinstance(value, config):
        return value if config is not None else None
    try:
        return config()
    except ValueError:  # a section with required settings that the config does not give
        return None
