"""Prefect flow `feedback`: score the published lists against the interactions ingested since (nightly runs it
after ingest, before retraining)."""
from __future__ import annotations

from typing import Any

from flows.guard import stage_flow, timed
from flows.params import StageParams
from genre_core.config import GenreConfig
from tasks.feedback import feedback_task


@stage_flow("feedback")
def feedback(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """Run the feedback stage with the given config file and overrides."""
    return timed(feedback_task, cfg)(cfg)
