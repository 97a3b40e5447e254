"""Turn a trained model + warehouse inputs into the rows of one recommendation run (no I/O here)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

from genre_core.recommend.cold import content_profiles, popularity_scores
from genre_core.recommend.config import RecommendConfig
from genre_core.recommend.data import WarehouseData, content_matrix, index_of, interactions_csr
from genre_core.recommend.device import block_budget_bytes, block_rows
from genre_core.recommend.topk import TopK, because_items, similar_items, topk_blocked

log = logging.getLogger(__name__)


@dataclass
class RecommendResult:
    """Rows of a run (``recs``: user_id, rank, item_id, score, because_item_id; ``similar``: item_id, rank,
    similar_item_id, score or None) and counts for the run record."""

    recs: pl.DataFrame
    similar: pl.DataFrame | None
    users: int
    cold_users: int
    stats: dict[str, Any] = field(default_factory=dict)


def rows_frame(
    ids: pl.Series, top: TopK, because: np.ndarray | None, items: pl.Series, names: tuple[str, str, str]
) -> pl.DataFrame:
    """Long format of a TopK: one row per (row, rank) with a valid item; ranks stay 1..n contiguous because
    empty slots (-1) only trail a row. ``names`` = (id column, item column, explanation column or "")."""
    n, k = top.items.shape
    flat = top.items.ravel()
    valid = flat >= 0
    frame = pl.DataFrame({
        names[0]: ids.gather(np.repeat(np.arange(n, dtype=np.int64), k)[valid]),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n)[valid],
        names[1]: items.gather(flat[valid]),
        "score": top.scores.ravel()[valid],
    })
    if names[2]:
        if because is None:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(names[2]))
        else:
            b = because.ravel()[valid]
            explained = items.gather(np.where(b >= 0, b, 0))
            frame = frame.with_columns(
                pl.when(pl.Series(b >= 0)).then(explained).otherwise(None).alias(names[2])
            )
    return frame


def compute_recommendations(
    model: Any, data: WarehouseData, rc: RecommendConfig, *, device: torch.device, progress: bool = False
) -> RecommendResult:
    """Top-``rc.k`` unseen items for every user in ``data.users``, plus ``similar_items``.

    ``model`` follows the Recommender contract (``idmap``, ``score``, ``item_vectors``, ``user_history``) and is
    already on ``device``. Users unknown to the model or without training history get the cold-start list.
    Seen items are all of a user's warehouse interactions; explanations use their positive interactions.
    """
    idmap = model.idmap
    n_items = len(idmap.items)
    items = pl.Series("item_id", idmap.items, dtype=pl.String)
    user_ids = data.users["user_id"]
    n_users = len(user_ids)
    seen, _ = interactions_csr(data, idmap.items)
    uidx = index_of(user_ids, list(idmap.users))
    known = np.flatnonzero(uidx >= 0)
    hist_len = np.zeros(n_users, dtype=np.int64)
    if known.size:
        history = model.user_history(torch.from_numpy(uidx[known]))
        hist_len[known] = [len(h) for h in history]
    warm = np.flatnonzero((uidx >= 0) & (hist_len > 0))
    cold = np.flatnonzero(~((uidx >= 0) & (hist_len > 0)))
    budget = block_budget_bytes(device, rc.memory_budget_mb, rc.cuda_memory_fraction)
    block = rc.block_users or block_rows(n_items, budget, n_users)
    vectors = model.item_vectors()
    parts: list[pl.DataFrame] = []
    names = ("user_id", "item_id", "because_item_id")

    if warm.size:
        top = topk_blocked(model.score, uidx[warm], n_items, rc.k, seen=seen.take(warm), device=device,
                           block_size=block, progress=progress, desc="scoring users")
        because = None
        if vectors is not None:
            positive, _ = interactions_csr(data, idmap.items, positive_only=True)
            because = because_items(vectors, positive.take(warm), top.items, device=device,
                                    budget_bytes=budget, progress=progress)
        parts.append(rows_frame(user_ids.gather(warm), top, because, items, names))

    by_content = np.zeros(0, dtype=np.int64)
    if cold.size and rc.cold_start == "content":
        if data.content is None or data.content.height == 0:
            log.warning("no item_features for modality %r: cold users get the popularity list", rc.content_modality)
        else:
            profiles, has = content_profiles(data, cold, data.content)
            by_content = cold[has]
            if by_content.size:
                cand, _ = content_matrix(data.content, list(idmap.items))
                prof_t = torch.from_numpy(profiles[has]).to(device)
                cand_t = torch.from_numpy(cand).to(device)
                top = topk_blocked(lambda i: prof_t[i] @ cand_t.T, np.arange(by_content.size), n_items, rc.k,
                                   seen=seen.take(by_content), device=device, block_size=block,
                                   progress=progress, desc="cold users (content)")
                parts.append(rows_frame(user_ids.gather(by_content), top, None, items, names))
    by_popularity = np.setdiff1d(cold, by_content)
    if by_popularity.size:
        pop = torch.from_numpy(popularity_scores(data, list(idmap.items))).to(device)
        top = topk_blocked(lambda i: pop.expand(len(i), -1).clone(), np.arange(by_popularity.size), n_items,
                           rc.k, seen=seen.take(by_popularity), device=device, block_size=block,
                           progress=progress, desc="cold users (popularity)")
        parts.append(rows_frame(user_ids.gather(by_popularity), top, None, items, names))

    recs = (pl.concat(parts) if parts else rows_frame(
        pl.Series([], dtype=pl.String), TopK(np.zeros((0, 1), np.int64), np.zeros((0, 1), np.float32)),
        None, items, names)).sort("user_id", "rank")

    similar = None
    if rc.similar_items and vectors is not None and n_items >= 2:
        sim = similar_items(vectors, rc.similar_k, device=device, block_size=block_rows(n_items, budget, n_items),
                            progress=progress)
        similar = rows_frame(items, sim, None, items, ("item_id", "similar_item_id", ""))
    elif rc.similar_items:
        log.warning("model gives no item vectors: similar_items left empty")
    stats = {"warm_users": int(warm.size), "cold_content": int(by_content.size),
             "cold_popularity": int(by_popularity.size), "block_users": int(block), "device": str(device),
             "similar_rows": 0 if similar is None else similar.height}
    return RecommendResult(recs=recs, similar=similar, users=n_users, cold_users=int(cold.size), stats=stats)
