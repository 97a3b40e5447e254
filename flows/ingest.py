"""Prefect flow `ingest`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any


from flows.guard import stage_flow, timed
from flows.params import StageParams
from genre_core.config import GenreConfig
from tasks.stages import ingest_task


@stage_flow("ingest")
def ingest(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """Run the ingest stage with the given config file and overrides."""
    return timed(ingest_task, cfg)(cfg)
