"""Config section ``feedback``: scoring published lists against later interactions (the nightly feedback stage)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FeedbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = True  # run the feedback stage in nightly (after ingest, before features/train)
    # cut-offs of hit rate / precision / recall / coverage / novelty; those above a run's K are skipped
    k_values: list[int] = Field(default_factory=lambda: [10, 20])

    @field_validator("k_values")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError("k_values must list positive integers")
        return sorted(set(v))
