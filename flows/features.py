"""Prefect flow `features`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.params import StageParams
from tasks.stages import features_task


@flow(name="features", log_prints=True, validate_parameters=True)
def features(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the features stage with the given config file and overrides."""
    return features_task(params.load())
