"""Prefect flow `features`: one stage of the GENRE pipeline, with a typed parameter form in the UI.

With ``execution.runner: dask`` the items to embed are cut into ``execution.partitions`` partitions per
modality, embedded as Prefect tasks on a Dask cluster (``flows.runner``), and written by the flow process in
one transaction per modality, with the same tables and counts as the local run.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from flows.guard import stage_flow, timed
from flows.params import StageParams
from flows.runner import task_runner_for
from genre_core.config import GenreConfig
from tasks.stages import embed_partition_task, features_task, plan_features_task, write_features_task


@stage_flow("features")
def features(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """Run the features stage with the given config file and overrides."""
    if cfg.execution.runner == "local":
        return timed(features_task, cfg)(cfg)
    return features_partitioned.with_options(task_runner=task_runner_for(cfg),
                                             timeout_seconds=cfg.execution.flow_timeout_s)(params)


@flow(name="features-partitioned", log_prints=True, validate_parameters=True)
def features_partitioned(params: StageParams = StageParams()) -> dict[str, Any]:
    """Plan here, embed the partitions on the flow's task runner, gather and write here."""
    cfg = params.load()
    plans = timed(plan_features_task, cfg)(cfg)
    futures = [timed(embed_partition_task, cfg).map(unmapped(cfg), plan.slices(cfg.execution.partitions)) for plan in plans]
    return timed(write_features_task, cfg)(cfg, plans, [[f.result() for f in fs] for fs in futures])
