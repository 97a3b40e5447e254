"""Scoring split into a plan (cheap, reads everything once) and independent user / item partitions (heavy).

``plan_scoring`` turns the warehouse inputs and the model's user index into a ``ScoringInput`` that holds
everything scoring needs as plain arrays: no warehouse connection, no per-process state, picklable. A slice
of it (``ScoringInput.slice``) scores on its own with ``score_partition`` in this process or on any worker,
and ``similar_partition`` does the same for a range of items. Concatenating the partitions in order gives the
rows of the whole run; the local path is the one-partition case of the same code.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl
import torch

from genre_core.recommend.cold import content_profiles, popularity_scores
from genre_core.recommend.config import RecommendConfig
from genre_core.recommend.data import WarehouseData, content_matrix, index_of, interactions_csr
from genre_core.device import block_budget_bytes, block_rows
from genre_core.ranking import CSR, TopK, topk_blocked
from genre_core.recommend.diversity import centred_unit_rows, diversify, pool_size
from genre_core.recommend.topk import because_items, similar_items

log = logging.getLogger(__name__)

REC_NAMES = ("user_id", "item_id", "because_item_id")
SIMILAR_NAMES = ("item_id", "similar_item_id", "")


@dataclass(frozen=True)
class ScoringInput:
    """What scoring a contiguous run of users needs (one row per user, in ``data.users`` order).

    Shared by every slice: ``items`` (the model's item ids, ``[n_items]``), ``popularity`` (float32
    ``[n_items]``), ``content`` (float32 ``[n_items, d]`` unit rows or None) and ``block`` (users per scoring
    block, sized once for the whole run so a partition scores with the same blocks as the local path).
    """

    user_ids: pl.Series  # String [m]
    uidx: np.ndarray  # int64 [m]: row in the model's user index, -1 for users unknown to the model
    warm: np.ndarray  # bool [m]: known to the model and with training history
    seen: CSR  # m rows: model item indices of each user's positive interactions (excluded from the list)
    positive: CSR | None  # m rows: positive interactions for explanations; None when the model has no vectors
    profiles: np.ndarray  # float32 [n_profiled, d]: content profiles of the cold users that have one
    profile_row: np.ndarray  # int64 [m]: row in ``profiles``, -1 for users without a content profile
    items: pl.Series  # String [n_items]
    popularity: np.ndarray  # float32 [n_items]
    content: np.ndarray | None  # float32 [n_items, d] candidate content vectors (cold_start="content")
    block: int  # users per scoring block
    budget: int  # bytes one block may use (explanations)
    mmr_vectors: np.ndarray | None = None  # float32 [n_items, d] centred unit rows for diversity re-ranking

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def slice(self, start: int, stop: int) -> ScoringInput:
        """The users ``start..stop-1`` (rows of this input) with the shared parts unchanged."""
        if not 0 <= start <= stop <= self.n_users:
            raise ValueError(f"slice ({start}, {stop}) out of range for {self.n_users} users")
        rows = np.arange(start, stop, dtype=np.int64)
        prow = self.profile_row[start:stop]
        has = prow >= 0
        new_prow = np.full(len(prow), -1, dtype=np.int64)
        new_prow[has] = np.arange(int(has.sum()), dtype=np.int64)
        return replace(
            self, user_ids=self.user_ids.slice(start, stop - start), uidx=self.uidx[start:stop],
            warm=self.warm[start:stop], seen=self.seen.take(rows),
            positive=None if self.positive is None else self.positive.take(rows),
            profiles=self.profiles[prow[has]], profile_row=new_prow,
        )


@dataclass
class PartitionResult:
    """Rows of one user partition (user_id, rank, item_id, score, because_item_id; sorted) and its counts."""

    recs: pl.DataFrame
    warm_users: int
    cold_content: int
    cold_popularity: int


def plan_scoring(model: Any, data: WarehouseData, rc: RecommendConfig, device: torch.device) -> ScoringInput:
    """Everything scoring needs, for every user of ``data.users``; no scores are computed here.

    ``model`` follows the Recommender contract (``idmap``, ``user_history``, ``item_vectors``); ``device`` only
    sizes the scoring blocks (the memory budget on CPU, free memory on CUDA).
    """
    idmap = model.idmap
    item_vocab = list(idmap.items)
    n_items = len(item_vocab)
    user_ids = data.users["user_id"]
    n_users = len(user_ids)
    seen, _ = interactions_csr(data, item_vocab, positive_only=True)  # explicit negatives are not "seen"
    uidx = index_of(user_ids, list(idmap.users))
    known = np.flatnonzero(uidx >= 0)
    hist_len = np.zeros(n_users, dtype=np.int64)
    if known.size:
        history = model.user_history(torch.from_numpy(uidx[known]))
        hist_len[known] = [len(h) for h in history]
    warm = (uidx >= 0) & (hist_len > 0)
    positive = seen if model.item_vectors() is not None and warm.any() else None
    budget = block_budget_bytes(device, rc.memory_budget_mb, rc.cuda_memory_fraction)
    cold = np.flatnonzero(~warm)
    profiles = np.zeros((0, 1), dtype=np.float32)
    profile_row = np.full(n_users, -1, dtype=np.int64)
    content = None
    if cold.size and rc.cold_start == "content":
        if data.content is None or data.content.height == 0:
            log.warning("no item_features for modality %r: cold users get the popularity list", rc.content_modality)
        else:
            prof, has = content_profiles(data, cold, data.content)
            profiles = prof[has]
            profile_row[cold[has]] = np.arange(int(has.sum()), dtype=np.int64)
            if has.any():
                content, _ = content_matrix(data.content, item_vocab)
    mmr_vectors = None
    if rc.diversity.weight > 0 and warm.any():
        if data.content is None or data.content.height == 0:
            log.warning("no item_features for modality %r: lists are not re-ranked for diversity", rc.content_modality)
        else:
            mmr_vectors = centred_unit_rows(*content_matrix(data.content, item_vocab))
    return ScoringInput(
        user_ids=user_ids, uidx=uidx, warm=warm, seen=seen, positive=positive, profiles=profiles,
        profile_row=profile_row, items=pl.Series("item_id", item_vocab, dtype=pl.String),
        popularity=popularity_scores(data, item_vocab), content=content,
        block=rc.block_users or block_rows(n_items, budget, n_users), budget=budget, mmr_vectors=mmr_vectors,
    )


def empty_recs(items: pl.Series) -> pl.DataFrame:
    """A zero-row recommendations frame with the right columns and types."""
    top = TopK(np.zeros((0, 1), np.int64), np.zeros((0, 1), np.float32))
    return rows_frame(pl.Series([], dtype=pl.String), top, None, items, REC_NAMES)


def score_partition(
    model: Any, part: ScoringInput, rc: RecommendConfig, *, device: torch.device, progress: bool = False
) -> PartitionResult:
    """Top-``rc.k`` unseen items for every user of ``part``: model scores for warm users, the content profile
    or the popularity list for cold ones. ``model`` is already on ``device``."""
    n_items = len(part.items)
    parts: list[pl.DataFrame] = []
    warm = np.flatnonzero(part.warm)
    if warm.size:
        rerank = part.mmr_vectors is not None
        pool = pool_size(rc.k, rc.diversity.pool_factor, n_items) if rerank else rc.k
        top = topk_blocked(model.score, part.uidx[warm], n_items, pool, seen=part.seen.take(warm), device=device,
                           block_size=part.block, progress=progress, desc="scoring users")
        if rerank:
            top = diversify(top, part.mmr_vectors, rc.k, rc.diversity.weight)
        because = None
        vectors = model.item_vectors()
        if vectors is not None and part.positive is not None:
            because = because_items(vectors, part.positive.take(warm), top.items, device=device,
                                    budget_bytes=part.budget, progress=progress)
        parts.append(rows_frame(part.user_ids.gather(warm), top, because, part.items, REC_NAMES))
    by_content = np.flatnonzero(part.profile_row >= 0)
    if by_content.size and part.content is not None:
        prof_t = torch.from_numpy(part.profiles[part.profile_row[by_content]]).to(device)
        cand_t = torch.from_numpy(part.content).to(device)
        top = topk_blocked(lambda i: prof_t[i] @ cand_t.T, np.arange(by_content.size), n_items, rc.k,
                           seen=part.seen.take(by_content), device=device, block_size=part.block,
                           progress=progress, desc="cold users (content)")
        parts.append(rows_frame(part.user_ids.gather(by_content), top, None, part.items, REC_NAMES))
    else:
        by_content = np.zeros(0, dtype=np.int64)
    by_popularity = np.setdiff1d(np.flatnonzero(~part.warm), by_content)
    if by_popularity.size:
        pop = torch.from_numpy(part.popularity).to(device)
        top = topk_blocked(lambda i: pop.expand(len(i), -1).clone(), np.arange(by_popularity.size), n_items,
                           rc.k, seen=part.seen.take(by_popularity), device=device, block_size=part.block,
                           progress=progress, desc="cold users (popularity)")
        parts.append(rows_frame(part.user_ids.gather(by_popularity), top, None, part.items, REC_NAMES))
    recs = (pl.concat(parts) if parts else empty_recs(part.items)).sort("user_id", "rank")
    return PartitionResult(recs=recs, warm_users=int(warm.size), cold_content=int(by_content.size),
                           cold_popularity=int(by_popularity.size))


def similar_partition(
    model: Any, rc: RecommendConfig, start: int, stop: int, *, device: torch.device, budget: int,
    progress: bool = False,
) -> pl.DataFrame:
    """``similar_items`` rows (item_id, rank, similar_item_id, score) of the model's items ``start..stop-1``.

    Needs a model with item vectors and at least 2 items (ValueError otherwise).
    """
    vectors = model.item_vectors()
    items = pl.Series("item_id", list(model.idmap.items), dtype=pl.String)
    if vectors is None or len(items) < 2:
        raise ValueError("similar_items needs a model with item vectors and at least 2 items")
    sim = similar_items(vectors, rc.similar_k, device=device, block_size=block_rows(len(items), budget, len(items)),
                        progress=progress, rows=(start, stop))
    return rows_frame(items.slice(start, stop - start), sim, None, items, SIMILAR_NAMES)


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
