"""Prefect flows: one per stage plus ``nightly``. Flow modules are imported lazily by name."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_FLOW_ATTRS = {
    "ingest": ("flows.ingest", "ingest"),
    "feedback": ("flows.feedback", "feedback"),
    "features": ("flows.features", "features"),
    "enrich": ("flows.enrich", "enrich"),
    "train": ("flows.train", "train"),
    "recommend": ("flows.recommend", "recommend"),
    "nightly": ("flows.nightly", "nightly"),
}


class _Flows(dict):
    def __missing__(self, key: str) -> Callable[..., Any]:
        module, attr = _FLOW_ATTRS[key]
        flow = getattr(importlib.import_module(module), attr)
        self[key] = flow
        return flow


FLOWS: dict[str, Callable[..., Any]] = _Flows()
