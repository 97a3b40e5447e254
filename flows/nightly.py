"""Prefect flow `nightly`: ingest -> (feedback) -> features -> (enrich) -> (tune) -> train -> recommend, each
stage a subflow.

The tune stage runs when ``tune.enabled``; it re-tunes only the models that are due (``tune.every_days``,
``tune.when_data_grew``, never tuned) and otherwise reuses the stored parameters.

Every stage is idempotent by fingerprint: with no new data and no config change, nothing is re-embedded,
retrained or republished, and the run says so. A failing stage fails the run with its reason; the published
recommendations stay as they were (publishing is atomic and happens last).
"""
from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger

from flows import FLOWS
from flows.guard import stage_flow, timed_flow
from flows.params import StageParams
from genre_core.config import GenreConfig
from genre_core.stages import nightly_plan
from tasks.artifacts import markdown, md_table


@stage_flow("nightly")
def nightly(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """The whole pipeline; scheduled nightly by prefect.yaml and runnable from the UI or `genre nightly`."""
    log = get_run_logger()
    t0 = time.perf_counter()
    stages: dict[str, Any] = {}
    timings: list[dict[str, Any]] = []
    for stage in nightly_plan(cfg):
        name, s0 = stage.name, time.perf_counter()
        # every stage, also one added later, with its nightly arguments (tune: force=False)
        stages[name] = timed_flow(FLOWS[name], cfg)(params, **stage.nightly_kwargs)
        timings.append({"stage": name, "seconds": round(time.perf_counter() - s0, 2),
                        "skipped": bool(isinstance(stages[name], dict) and stages[name].get("skipped"))})
        log.info("stage %s done in %.1fs", name, timings[-1]["seconds"])
    total = round(time.perf_counter() - t0, 2)
    markdown("nightly-summary", f"## Nightly run\n\n{md_table(timings)}\n\nTotal: {total} s", "stage timings")
    return {"stages": stages, "timings": timings, "seconds": total}
