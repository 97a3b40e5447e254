"""Prefect flow `enrich`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any


from flows.guard import stage_flow, timed
from flows.params import StageParams
from genre_core.config import GenreConfig
from tasks.stages import enrich_task


@stage_flow("enrich")
def enrich(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """Run the enrich stage with the given config file and overrides."""
    return timed(enrich_task, cfg)(cfg)
