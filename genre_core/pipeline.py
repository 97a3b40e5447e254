"""The nightly pipeline without the Prefect engine (``genre nightly --direct``); the same stage list as
flows/nightly.py (``genre_core.stages.nightly_plan``)."""
from __future__ import annotations

import time
from typing import Any

from genre_core.config import GenreConfig
from genre_core.stages import nightly_plan


def run_nightly(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """ingest -> (feedback) -> features -> (enrich) -> train -> recommend; returns each stage's summary and timings."""
    stages: dict[str, Any] = {}
    timings = []
    t0 = time.perf_counter()
    for stage in nightly_plan(cfg):
        s0 = time.perf_counter()
        stages[stage.name] = stage.run_direct(cfg, progress=progress)
        timings.append({"stage": stage.name, "seconds": round(time.perf_counter() - s0, 2)})
    return {"stages": stages, "timings": timings, "seconds": round(time.perf_counter() - t0, 2)}
