"""The recommend stage: champion model -> top-K for every warehouse user -> atomically published run.

In three steps, so that the heavy middle one can run anywhere (``execution.runner``):

1. ``prepare_recommend`` (driver): read the warehouse once, plan the scoring (``RecommendJob``);
2. ``score_users`` over user partitions of the plan and ``score_similar`` over item ranges: pure functions of
   (config, model, partition), run in process by ``recommend_with_model`` or as Prefect tasks on Dask;
3. ``finish_recommend`` (driver): merge the partitions, write LLM explanations of the top recommendations
   (``genre_core.llm.explain``) and publish through the registered publish target
   named by ``warehouse.publish_to`` (``genre_core.recommend.targets``).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from genre_core.config import GenreConfig
from genre_core.execution import partition_bounds
from genre_core.recommend.data import load_warehouse
from genre_core.device import resolve_device
from genre_core.recommend.partitions import PartitionResult, ScoringInput, plan_scoring, score_partition, similar_partition
from genre_core.recommend.publish import RunRecord
from genre_core.recommend.merge import merge_partitions, wants_similar
from genre_core.recommend.targets import publish_with_target

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(started: datetime) -> str:
    """Sortable, unique run id: ``20261122T021500Z-1a2b3c4d``."""
    return f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class RecommendJob:
    """One recommend run between planning and publishing (lives in the driver process)."""

    model: Any  # Recommender contract
    model_name: str
    model_version: str
    model_run_id: str
    plan: ScoringInput  # every warehouse user
    similar: bool  # whether this run builds similar_items
    device: str  # recommend.device as resolved once by the driver (workers resolve their own: score_users)
    started: datetime  # naive UTC
    t0: float  # time.perf_counter() at the start (driver clock)

    def user_partitions(self, partitions: int) -> list[ScoringInput]:
        """The plan cut into at most ``partitions`` contiguous user partitions (in user order)."""
        return [self.plan.slice(a, b) for a, b in partition_bounds(self.plan.n_users, partitions)]

    def item_ranges(self, partitions: int) -> list[tuple[int, int]]:
        """At most ``partitions`` ranges of the model's items for ``similar_items`` ([] when the run has none)."""
        return partition_bounds(len(self.plan.items), partitions) if self.similar else []


def prepare_recommend(
    cfg: GenreConfig, model: Any, *, model_name: str, model_version: str, model_run_id: str
) -> RecommendJob:
    """Read the warehouse (one short read-only connection) and plan the run for ``model``."""
    t0, started = time.perf_counter(), _utcnow()
    data = load_warehouse(cfg)
    if data.users.height == 0:
        raise ValueError("the warehouse has no users: run `genre ingest` first")
    device = resolve_device(cfg.recommend.device)
    plan = plan_scoring(model, data, cfg.recommend, device)
    similar = wants_similar(model, cfg.recommend)
    if cfg.recommend.similar_items and not similar:
        log.warning("model gives no item vectors: similar_items left empty")
    return RecommendJob(model=model, model_name=model_name, model_version=str(model_version),
                        model_run_id=str(model_run_id), plan=plan, similar=similar, device=str(device),
                        started=started, t0=t0)


def prepare_champion(cfg: GenreConfig) -> RecommendJob:
    """``prepare_recommend`` for the registered ``champion`` (``genre_core.tracking.load_champion``)."""
    from genre_core.tracking import load_champion  # the model stage's registry access

    champion = load_champion(cfg)
    return prepare_recommend(cfg, champion.model, model_name=champion.name, model_version=champion.version,
                             model_run_id=champion.run_id)


def score_users(cfg: GenreConfig, model: Any, part: ScoringInput, progress: bool = False) -> PartitionResult:
    """Score one user partition on this process's device (``recommend.device``, resolved here)."""
    device = resolve_device(cfg.recommend.device)
    return score_partition(model.to(device), part, cfg.recommend, device=device, progress=progress)


def score_similar(cfg: GenreConfig, model: Any, start: int, stop: int, budget: int,
                  progress: bool = False) -> pl.DataFrame:
    """``similar_items`` rows of the model's items ``start..stop-1`` on this process's device."""
    device = resolve_device(cfg.recommend.device)
    return similar_partition(model.to(device), cfg.recommend, start, stop, device=device, budget=budget,
                             progress=progress)


def finish_recommend(
    cfg: GenreConfig, job: RecommendJob, parts: list[PartitionResult], similar: list[pl.DataFrame],
    progress: bool = False,
) -> dict[str, Any]:
    """Merge the partitions of ``job``, write the LLM explanations of the top ``llm.explain_top_n`` (when
    ``llm.enabled``), publish the run, return its summary (see ``run_recommend``)."""
    result = merge_partitions(job.plan, parts, similar if job.similar else None, job.device)
    t_scored = time.perf_counter()
    from genre_core.llm.explain import explain_recommendations  # noqa: PLC0415 - LLM code only for this step

    result.explanations, explained = explain_recommendations(cfg, result.recs, progress=progress)
    log.info("explanations: %s", explained)
    t_explained = time.perf_counter()
    run = RunRecord(
        run_id=new_run_id(job.started), model_name=job.model_name, model_version=job.model_version,
        model_run_id=job.model_run_id, k=cfg.recommend.k, users=result.users, rows=result.recs.height,
        cold_users=result.cold_users, started_at=job.started, finished_at=_utcnow(),
    )
    target = publish_with_target(cfg, result, run)
    seconds = time.perf_counter() - job.t0
    publish_s = time.perf_counter() - t_explained
    return {
        "run_id": run.run_id,
        "model_name": job.model_name,
        "model_version": job.model_version,
        "model_run_id": job.model_run_id,
        "k": cfg.recommend.k,
        "users": result.users,
        "cold_users": result.cold_users,
        "rows": run.rows,
        **result.stats,
        "scoring_seconds": round(t_scored - job.t0, 3),
        "publish_seconds": round(publish_s, 3),
        "publish_rows_per_s": round(run.rows / publish_s, 1) if publish_s > 0 else None,
        "seconds": round(seconds, 3),
        "rows_per_s": round(run.rows / seconds, 1) if seconds > 0 else None,
        "explanations": explained,
        **target,
    }


def run_job_locally(cfg: GenreConfig, job: RecommendJob, progress: bool = True) -> dict[str, Any]:
    """Score ``job`` in this process, partition after partition, and publish it.

    The partitions are the same ``execution.partitions`` that a distributed run spreads over its workers, so
    both score the same blocks of users and publish bit-identical rows.
    """
    n = cfg.execution.partitions
    parts = [score_users(cfg, job.model, p, progress=progress) for p in job.user_partitions(n)]
    similar = [score_similar(cfg, job.model, a, b, job.plan.budget, progress=progress) for a, b in job.item_ranges(n)]
    return finish_recommend(cfg, job, parts, similar, progress=progress)


def recommend_with_model(
    cfg: GenreConfig,
    model: Any,
    *,
    model_name: str,
    model_version: str,
    model_run_id: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every warehouse user with ``model`` (the Recommender contract) in this process and publish the run.

    Reads the warehouse through one short read-only connection and writes only the published tables (the
    serving file ``genre_core.paths.serving_path(cfg)``, or PostgreSQL). Returns the run summary (see
    ``run_recommend``).
    """
    job = prepare_recommend(cfg, model, model_name=model_name, model_version=model_version,
                            model_run_id=model_run_id)
    return run_job_locally(cfg, job, progress=progress)


def run_recommend(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """Load the registered ``champion`` and publish its top-K run, in this process.

    Returns a summary: run_id, model_name, model_version, model_run_id, k, users, cold_users (cold_content,
    cold_popularity), warm_users, rows, similar_rows, device, block_users, partitions, seconds, rows_per_s,
    scoring_seconds, publish_seconds, publish_rows_per_s, published_to ("duckdb" | "postgres"), target (the
    serving file, or the PostgreSQL URL without password), serving_path (None for postgres), explanations
    (``genre_core.llm.explain.explain_recommendations``'s summary: rows, explained, calls, cache_hits, ...).
    """
    return run_job_locally(cfg, prepare_champion(cfg), progress=progress)
