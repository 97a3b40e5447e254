"""Turn a trained model + warehouse inputs into the rows of one recommendation run (no I/O here).

The work is planned once (``genre_core.recommend.plan.plan_scoring``) and scored in user partitions; this
module is the in-process path: all users as one partition, then ``similar_items`` over the whole catalogue.
The distributed path (``flows/recommend.py`` with ``execution.runner: dask``) runs the same partition
functions as Prefect tasks and merges them with ``merge_partitions``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import torch

from genre_core.recommend.config import RecommendConfig
from genre_core.recommend.data import WarehouseData
from genre_core.recommend.plan import (
    PartitionResult,
    ScoringInput,
    empty_recs,
    plan_scoring,
    rows_frame,
    score_partition,
    similar_partition,
)

log = logging.getLogger(__name__)

__all__ = ["RecommendResult", "compute_recommendations", "merge_partitions", "rows_frame"]


@dataclass
class RecommendResult:
    """Rows of a run (``recs``: user_id, rank, item_id, score, because_item_id; ``similar``: item_id, rank,
    similar_item_id, score or None) and counts for the run record."""

    recs: pl.DataFrame
    similar: pl.DataFrame | None
    users: int
    cold_users: int
    stats: dict[str, Any] = field(default_factory=dict)


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


def compute_recommendations(
    model: Any, data: WarehouseData, rc: RecommendConfig, *, device: torch.device, progress: bool = False
) -> RecommendResult:
    """Top-``rc.k`` unseen items for every user in ``data.users``, plus ``similar_items``.

    ``model`` follows the Recommender contract (``idmap``, ``score``, ``item_vectors``, ``user_history``) and is
    already on ``device``. Users unknown to the model or without training history get the cold-start list.
    Seen items and explanations are a user's positive interactions (the ``events`` rules).
    """
    plan = plan_scoring(model, data, rc, device)
    part = score_partition(model, plan, rc, device=device, progress=progress)
    similar = None
    if wants_similar(model, rc):
        similar = [similar_partition(model, rc, 0, len(plan.items), device=device, budget=plan.budget,
                                     progress=progress)]
    elif rc.similar_items:
        log.warning("model gives no item vectors: similar_items left empty")
    return merge_partitions(plan, [part], similar, str(device))
