"""Prefect flows: one per stage plus ``nightly`` (``genre_core.stages``); flow modules are imported lazily."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genre_core.stages import get_stage, load


class _Flows(dict):
    def __missing__(self, key: str) -> Callable[..., Any]:
        flow = load(get_stage(key).flow)
        self[key] = flow
        return flow


FLOWS: dict[str, Callable[..., Any]] = _Flows()
