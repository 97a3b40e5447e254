"""Publish target ``parquet``: the latest run as one Parquet file, written aside and renamed into place."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from genre_core.recommend.targets import TARGETS, PublishTarget


class ParquetTargetConfig(BaseModel):
    """``warehouse.parquet``."""

    model_config = ConfigDict(extra="forbid")

    path: str  # the Parquet file readers open


@TARGETS.register("parquet")
class ParquetTarget(PublishTarget):
    Config = ParquetTargetConfig

    def publish(self, result: Any, run: Any) -> dict[str, Any]:
        path = Path(self.section.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{run.run_id}")
        result.recs.with_columns(pl.lit(run.run_id).alias("run_id")).write_parquet(tmp)
        os.replace(tmp, path)
        return {"published_to": self.name, "target": str(path), "serving_path": None, "pruned_runs": []}
