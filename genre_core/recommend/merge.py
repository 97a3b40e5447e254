"""Merge the user and item partitions of one recommendation run into its result (no I/O here).

The work is planned once and scored in partitions (``genre_core.recommend.partitions``), in this process
(``genre_core.recommend.pipeline.run_job_locally``) or as Prefect tasks on Dask (``flows/recommend.py``);
either way ``merge_partitions`` builds the ``RecommendResult`` that a publish target receives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from genre_core.recommend.config import RecommendConfig
from genre_core.recommend.partitions import PartitionResult, ScoringInput, empty_recs, rows_frame

__all__ = ["RecommendResult", "merge_partitions", "rows_frame", "wants_similar"]


@dataclass
class RecommendResult:
    """Rows of a run (``recs``: user_id, rank, item_id, score, because_item_id; ``similar``: item_id, rank,
    similar_item_id, score or None), optional ``explanations`` and counts for the run record."""

    recs: pl.DataFrame
    similar: pl.DataFrame | None
    users: int
    cold_users: int
    stats: dict[str, Any] = field(default_factory=dict)
    # LLM explanations of the top recommendations (``genre_core.llm.explain``; columns
    # ``publish.EXPLANATION_INPUT_COLUMNS``), set by the recommend stage; None when explanations are off
    explanations: pl.DataFrame | None = None


def merge_partitions(
    plan: ScoringInput, parts: list[PartitionResult], similar: list[pl.DataFrame] | None, device: str
) -> RecommendResult:
    """One run's result from its user partitions (covering ``plan``'s users, any order) and item partitions.

    ``similar`` None means no ``similar_items`` table for this run (model without vectors, or turned off).
    """
    covered = sum(p.warm_users + p.cold_content + p.cold_popularity for p in parts)
    if covered != plan.n_users:
        raise ValueError(f"the partitions cover {covered} users, the plan has {plan.n_users}")
    recs = pl.concat([p.recs for p in parts]).sort("user_id", "rank") if parts else empty_recs(plan.items)
    sim = pl.concat(similar).sort("item_id", "rank") if similar else None
    warm = sum(p.warm_users for p in parts)
    stats = {"warm_users": warm, "cold_content": sum(p.cold_content for p in parts),
             "cold_popularity": sum(p.cold_popularity for p in parts), "block_users": int(plan.block),
             "device": device, "similar_rows": 0 if sim is None else sim.height, "partitions": len(parts)}
    return RecommendResult(recs=recs, similar=sim, users=plan.n_users, cold_users=plan.n_users - warm, stats=stats)


def wants_similar(model: Any, rc: RecommendConfig) -> bool:
    """True when this run builds ``similar_items``: turned on, and the model gives vectors for >= 2 items."""
    return bool(rc.similar_items and model.item_vectors() is not None and len(model.idmap.items) >= 2)
