"""Prefect flow `ingest`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.guard import guarded, timed
from flows.params import StageParams
from tasks.stages import ingest_task


@flow(name="ingest", log_prints=True, validate_parameters=True)
def ingest(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the ingest stage with the given config file and overrides."""
    cfg = params.load()
    with guarded("ingest", cfg):
        return timed(ingest_task, cfg)(cfg)
