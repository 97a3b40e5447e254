"""Prefect flow `enrich`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.guard import guarded, timed
from flows.params import StageParams
from tasks.stages import enrich_task


@flow(name="enrich", log_prints=True, validate_parameters=True)
def enrich(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the enrich stage with the given config file and overrides."""
    cfg = params.load()
    with guarded("enrich", cfg):
        return timed(enrich_task, cfg)(cfg)
