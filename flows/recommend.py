"""Prefect flow `recommend`: one stage of the GENRE pipeline, with a typed parameter form in the UI.

With ``execution.runner: dask`` the users (and the items, for ``similar_items``) are cut into
``execution.partitions`` partitions scored as Prefect tasks on a Dask cluster (``flows.runner``); the flow
process plans, gathers and publishes, with the same rows as the local run.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from flows.guard import stage_flow, timed
from flows.params import StageParams
from flows.runner import task_runner_for
from genre_core.config import GenreConfig
from tasks.stages import (
    plan_recommend_task,
    publish_gathered_task,
    recommend_task,
    score_similar_task,
    score_users_task,
)


@stage_flow("recommend")
def recommend(cfg: GenreConfig, params: StageParams) -> dict[str, Any]:
    """Run the recommend stage with the given config file and overrides."""
    if cfg.execution.runner == "local":
        return timed(recommend_task, cfg)(cfg)
    return recommend_partitioned.with_options(task_runner=task_runner_for(cfg),
                                              timeout_seconds=cfg.execution.flow_timeout_s)(params)


@flow(name="recommend-partitioned", log_prints=True, validate_parameters=True)
def recommend_partitioned(params: StageParams = StageParams()) -> dict[str, Any]:
    """Plan here, score user and item partitions on the flow's task runner, gather and publish here."""
    cfg = params.load()
    job = timed(plan_recommend_task, cfg)(cfg)
    n = cfg.execution.partitions
    users = timed(score_users_task, cfg).map(unmapped(cfg), unmapped(job.model), job.user_partitions(n))
    similar = timed(score_similar_task, cfg).map(unmapped(cfg), unmapped(job.model), job.item_ranges(n),
                                     unmapped(job.plan.budget))
    return timed(publish_gathered_task, cfg)(cfg, job, [f.result() for f in users], [f.result() for f in similar])
