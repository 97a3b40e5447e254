"""Prefect flow `feedback`: score the published lists against the interactions ingested since (nightly runs it
after ingest, before retraining)."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import StageParams
from tasks.feedback import feedback_task


@flow(name="feedback", log_prints=True, validate_parameters=True)
def feedback(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the feedback stage with the given config file and overrides."""
    return feedback_task(params.load())
