"""Config section ``recommend``: nightly top-K precomputation and publishing."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RecommendConfig(_Strict):
    k: int = Field(20, ge=1, le=1000)
    similar_k: int = Field(20, ge=1, le=1000)
    cold_start: Literal["popularity", "content"] = "popularity"
    keep_runs: int = Field(3, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    block_users: int | None = None  # None: sized from available memory
    memory_budget_mb: int = Field(512, ge=16)
