"""The nightly pipeline without the Prefect engine (``genre nightly --direct``); same order as flows/nightly.py."""
from __future__ import annotations

import time
from typing import Any

from genre_core.config import GenreConfig


def run_nightly(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """ingest -> (feedback) -> features -> (enrich) -> train -> recommend; returns each stage's summary and
    timings. ``feedback`` scores the lists published before this night's new interactions."""
    from genre_core.features.pipeline import run_features
    from genre_core.ingest.pipeline import run_ingest
    from genre_core.models.pipeline import run_train
    from genre_core.recommend.pipeline import run_recommend

    plan = [("ingest", run_ingest)]
    if cfg.feedback.enabled:
        from genre_core.feedback.pipeline import run_feedback

        plan.append(("feedback", run_feedback))
    plan.append(("features", run_features))
    if cfg.llm.enabled:
        from genre_core.llm.pipeline import run_enrich

        plan.append(("enrich", run_enrich))
    plan += [("train", run_train), ("recommend", run_recommend)]
    stages: dict[str, Any] = {}
    timings = []
    t0 = time.perf_counter()
    for name, fn in plan:
        s0 = time.perf_counter()
        stages[name] = fn(cfg, progress=progress)
        timings.append({"stage": name, "seconds": round(time.perf_counter() - s0, 2)})
    return {"stages": stages, "timings": timings, "seconds": round(time.perf_counter() - t0, 2)}
