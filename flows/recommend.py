"""Prefect flow `recommend`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import StageParams
from tasks.stages import recommend_task


@flow(name="recommend", log_prints=True, validate_parameters=True)
def recommend(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the recommend stage with the given config file and overrides."""
    return recommend_task(params.load())
