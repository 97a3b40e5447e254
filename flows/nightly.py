"""Prefect flow `nightly`: ingest -> features -> (enrich) -> train -> recommend, each stage a subflow.

Every stage is idempotent by fingerprint: with no new data and no config change, nothing is re-embedded,
retrained or republished, and the run says so. A failing stage fails the run with its reason; the published
recommendations stay as they were (publishing is atomic and happens last).
"""
from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger

from flows.enrich import enrich
from flows.features import features
from flows.ingest import ingest
from flows.guard import guarded, timed_flow
from flows.params import StageParams
from flows.recommend import recommend
from flows.train import train
from genre_core.config import GenreConfig
from tasks.artifacts import markdown, md_table


@flow(name="nightly", log_prints=True, validate_parameters=True)
def nightly(params: StageParams = StageParams()) -> dict[str, Any]:
    """The whole pipeline; scheduled nightly by prefect.yaml and runnable from the UI or `genre nightly`."""
    cfg = params.load()  # fail on a bad config before any stage starts
    with guarded("nightly", cfg):
        return _chain(cfg, params)


def _chain(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    log = get_run_logger()
    t0 = time.perf_counter()
    stages: dict[str, Any] = {}
    timings: list[dict[str, Any]] = []
    plan = [("ingest", ingest), ("features", features)]
    if cfg.llm.enabled:
        plan.append(("enrich", enrich))
    plan += [("train", train), ("recommend", recommend)]
    for name, stage in plan:
        s0 = time.perf_counter()
        stages[name] = timed_flow(stage, cfg)(params)
        timings.append({"stage": name, "seconds": round(time.perf_counter() - s0, 2),
                        "skipped": bool(isinstance(stages[name], dict) and stages[name].get("skipped"))})
        log.info("stage %s done in %.1fs", name, timings[-1]["seconds"])
    total = round(time.perf_counter() - t0, 2)
    markdown("nightly-summary", f"## Nightly run\n\n{md_table(timings)}\n\nTotal: {total} s", "stage timings")
    return {"stages": stages, "timings": timings, "seconds": total}
