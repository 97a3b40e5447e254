"""Dataset readers by config name (``dataset.reader``): ``@READERS.register(name)`` on a ``DatasetReader``.

A reader declares its settings as ``Config`` (a pydantic model, or None for none); ``dataset.<name>:`` in
YAML is validated against it at config load and handed to ``read``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from genre_core.registry import Registry

if TYPE_CHECKING:
    from genre_core.config import GenreConfig


class DatasetReader(ABC):
    """Reads one dataset layout into canonical ``EntityBatch``es (items, users, interactions, in that order)."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel] | None] = None  # the typed ``dataset.<name>`` section, if any

    @abstractmethod
    def read(self, cfg: GenreConfig, section: Any) -> list[Any]:
        """``cfg``: the whole config (data dir, dataset paths); ``section``: ``dataset.<name>`` as ``Config``
        (None without one). Returns ``genre_core.ingest.readers.EntityBatch``es; SourceError for an unreadable
        file."""


READERS: Registry[DatasetReader] = Registry("dataset reader", "dataset.reader", builtin=("genre_core.ingest.readers", "genre_core.ingest.recbole"))
