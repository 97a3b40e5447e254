"""Config section ``train``: split, models, hybrid, multi-task losses."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    kind: Literal["user_temporal", "global_time"] = "user_temporal"
    test_fraction: float = Field(0.2, gt=0, lt=1)
    test_last_n: int | None = None
    valid_fraction: float = Field(0.1, ge=0, lt=1)  # carved from each user's training part
    cold_item_fraction: float = Field(0.0, ge=0, lt=1)
    cold_user_fraction: float = Field(0.0, ge=0, lt=1)
    min_positive_value: float | None = None  # None: every interaction is a positive


class TrainConfig(_Strict):
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    models: list[str] = Field(default_factory=lambda: ["popularity", "itemknn", "bpr", "content", "hybrid"])
    split: SplitConfig = SplitConfig()
    k_values: list[int] = Field(default_factory=lambda: [10, 20])
