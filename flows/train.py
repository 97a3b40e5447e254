"""Prefect flow `train`: one stage of the GENRE pipeline, with a typed parameter form in the UI."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.guard import guarded, timed
from flows.params import StageParams
from tasks.stages import train_task


@flow(name="train", log_prints=True, validate_parameters=True)
def train(params: StageParams = StageParams()) -> dict[str, Any]:
    """Run the train stage with the given config file and overrides."""
    cfg = params.load()
    with guarded("train", cfg):
        return timed(train_task, cfg)(cfg)
