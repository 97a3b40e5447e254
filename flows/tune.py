"""Prefect flow `tune`: Optuna search per model on the validation split; the best parameters are stored in the
warehouse (``tuned_params``) and picked up by every later `train`.

Like ``flows.guard.stage_flow`` (config loaded first, GENRE_HOME's pipeline lock, the task timeout), with one
more flow parameter, ``force``, that the nightly sets to False (``Stage.nightly_kwargs``)."""
from __future__ import annotations

from typing import Any

from prefect import flow

from flows.guard import guarded, timed
from flows.params import StageParams
from tasks.tune import tune_task


@flow(name="tune", log_prints=True, validate_parameters=True)
def tune(params: StageParams = StageParams(), force: bool = True) -> dict[str, Any]:
    """Tune every model of ``tune.models`` (``force``), or only those due by ``tune.every_days`` /
    ``tune.when_data_grew`` (``force=False``, as the nightly runs it)."""
    cfg = params.load()
    with guarded("tune", cfg):
        return timed(tune_task, cfg)(cfg, force=force)


tune.fn.genre_stage = "tune"  # type: ignore[attr-defined]  # a stage flow (checked by tests/security)
