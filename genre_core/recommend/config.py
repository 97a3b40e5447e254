"""Config section ``recommend``: nightly top-K precomputation and publishing."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DiversityConfig(_Strict):
    """Maximal-marginal-relevance re-ranking of each user's list (genre_core.recommend.diversity)."""

    # w in (1 - w) * relevance - w * max similarity to the items already chosen; 0 = off (the model's order)
    weight: float = Field(0.0, ge=0.0, le=1.0)
    # candidates re-ranked per user: the model's top k * pool_factor unseen items
    pool_factor: int = Field(3, ge=1, le=50)


class RecommendConfig(_Strict):
    # list length per user (rows per user in `recommendations`; fewer only when the catalogue runs out)
    k: int = Field(20, ge=1, le=1000)
    # neighbours per item in `similar_items`
    similar_k: int = Field(20, ge=1, le=1000)
    # build `similar_items` (needs a model with item vectors; skipped with a note when it has none)
    similar_items: bool = True
    # list for users unknown to the model or without history: "popularity" (warehouse interaction counts) or
    # "content" (cosine to the mean content vector of what little they have; popularity when they have nothing)
    cold_start: Literal["popularity", "content"] = "popularity"
    # `item_features.modality` used as content vectors by cold_start="content"
    content_modality: str = "text"
    # deprecated (use the `events` section, which decides what is "seen" and "because"): a value threshold for
    # positives of every event type without a rule of its own
    positive_min_value: float | None = None
    # diversity re-ranking of warm users' lists over `content_modality` vectors (off by default)
    diversity: DiversityConfig = Field(default_factory=DiversityConfig)
    # complete runs kept in `recommendations_history` (the latest included)
    keep_runs: int = Field(3, ge=1)
    # scoring device, resolved once: "auto" = cuda when available
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # users scored per block; None: sized from memory (memory_budget_mb on CPU, free GPU memory on CUDA)
    block_users: int | None = Field(None, ge=1)
    # working memory for one block of scores on CPU, in MiB
    memory_budget_mb: int = Field(512, ge=16)
    # fraction of the free CUDA memory one block of scores may use
    cuda_memory_fraction: float = Field(0.5, gt=0.0, le=0.95)
