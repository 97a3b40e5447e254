"""The typed parameter every GENRE flow takes; Prefect validates it and renders it as a form in the UI."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from genre_core.config import PROJECT_ROOT, GenreConfig, load_config


class StageParams(BaseModel):
    """Which config to run with: a YAML file (merged over conf/default.yaml) plus ``key.path=value`` overrides."""

    model_config = ConfigDict(extra="forbid")

    config: str | None = Field("conf/movielens-100k.yaml", description="config file, relative to the project root or absolute")
    overrides: list[str] = Field(default_factory=list, description="overrides such as recommend.k=50")

    def load(self) -> GenreConfig:
        """Validate and load the config (fails before any work, naming the bad key)."""
        path = None
        if self.config:
            p = Path(self.config).expanduser()
            path = p if p.is_absolute() or p.exists() else PROJECT_ROOT / p
        return load_config(path, self.overrides)
