"""Dataset reader ``jsonl``: items and interactions as JSON lines (one object per line)."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict

from genre_core.config import GenreConfig
from genre_core.ingest.raw import RawTable, SourceError, sha256_file
from genre_core.ingest.readers import INTERACTION_COLUMNS, ITEM_COLUMNS, EntityBatch
from genre_core.ingest.registry import READERS, DatasetReader
from genre_core.paths import resolve_data_path


class JsonlConfig(BaseModel):
    """``dataset.jsonl``: file names under ``dataset.path``."""

    model_config = ConfigDict(extra="forbid")

    items: str = "items.jsonl"  # {"id", "title", "genres"}
    events: str = "events.jsonl"  # {"user", "item", "rating", "time"}


def _read(path: Path, keys: list[str]) -> RawTable:
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for n, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: line {n} is not JSON ({exc.msg})") from None
        rows.append({**{k: None if obj.get(k) is None else str(obj[k]) for k in keys}, "_row": n, "_raw": line})
    return RawTable(path=path, sha256=sha256_file(path), records=pl.DataFrame(
        rows, schema={**{k: pl.Utf8 for k in keys}, "_row": pl.Int64, "_raw": pl.Utf8}))


@READERS.register("jsonl")
class JsonlReader(DatasetReader):
    Config = JsonlConfig

    def read(self, cfg: GenreConfig, section: JsonlConfig) -> list[EntityBatch]:
        root = resolve_data_path(cfg, cfg.dataset.path)
        items = _read(root / section.items, ["id", "title", "genres"])
        r = items.records
        item_frame = pl.DataFrame({"item_id": r["id"], "title": r["title"], "text": r["title"],
                                   "category": r["genres"], "image_path": pl.Series([None] * r.height, dtype=pl.Utf8),
                                   "attributes": pl.Series(["{}"] * r.height, dtype=pl.Utf8)})
        events = _read(root / section.events, ["user", "item", "rating", "time"])
        e = events.records
        event_frame = pl.DataFrame({"user_id": e["user"], "item_id": e["item"],
                                    "event_type": pl.Series(["rating"] * e.height, dtype=pl.Utf8),
                                    "value": e["rating"], "ts": e["time"],
                                    "is_history": pl.Series([False] * e.height, dtype=pl.Boolean)})
        return [
            EntityBatch("items", items, item_frame.select(ITEM_COLUMNS).with_columns(r["_row"], r["_raw"])),
            EntityBatch("interactions", events, event_frame.select(INTERACTION_COLUMNS).with_columns(e["_row"], e["_raw"]),
                        users_from_interactions=True),
        ]
