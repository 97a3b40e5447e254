"""Helpers for the features tests: warehouse items from real ml-100k + TMDB rows, or synthetic ones.

Items are inserted directly, so these tests do not depend on the ingestion stage. (A plain module, imported by
the test files of this folder; the fixture is in conftest.py.)
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import polars as pl
import pytest

from genre_core.config import GenreConfig
from genre_core.warehouse import connect

SHARED_DATA = Path(os.environ.get("GENRE_DATA_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data")


def shared_dataset(name: str) -> Path:
    """Path of a shared dataset folder, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"dataset {name} not found at {path} (set GENRE_DATA_DIR to the folder holding it)")
    return path


def ml100k_items(ids: list[int] | None = None) -> pl.DataFrame:
    """item_id, title, text (TMDB overview), category (genres joined by '|'), image_path for ml-100k items.

    Skips the test when ../shared/data (or $GENRE_DATA_DIR) lacks ml-100k or the TMDB side info.
    """
    ml, tmdb = shared_dataset("ml-100k"), shared_dataset("ml-100k-tmdb-posters")
    genres = [ln.split("|")[0] for ln in (ml / "u.genre").read_text(encoding="latin-1").splitlines() if "|" in ln]
    overview: dict[str, str] = {}
    with (tmdb / "items_tmdb.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            overview.setdefault(row["movie_id"], row["overview"])
    wanted = None if ids is None else {str(i) for i in ids}
    rows = []
    for line in (ml / "u.item").read_text(encoding="latin-1").splitlines():
        f = line.split("|")
        if len(f) < 24 or (wanted is not None and f[0] not in wanted):
            continue
        poster = tmdb / "posters" / f"{f[0]}.jpg"
        rows.append({
            "item_id": f[0], "title": f[1], "text": overview.get(f[0]) or None,
            "category": "|".join(g for g, flag in zip(genres, f[5:24]) if flag == "1"),
            "image_path": str(poster),  # absolute; 19 ids have no poster file (recorded as missing)
        })
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in ("item_id", "title", "text", "category", "image_path")})


def insert_items(cfg: GenreConfig, items: pl.DataFrame) -> None:
    """Upsert ``items`` (item_id, title, text, category, image_path[, enriched]) into the warehouse."""
    enriched = items.get_column("enriched") if "enriched" in items.columns else pl.Series([None] * items.height)
    frame = items.select("item_id", "title", "text", "category", "image_path").with_columns(
        pl.Series("attributes", [json.dumps({"enriched": e}) if e else None for e in enriched], dtype=pl.Utf8)
    )
    with connect(cfg) as con:
        con.register("_new_items", frame.to_arrow())
        con.execute(
            "INSERT OR REPLACE INTO items (item_id, title, text, category, image_path, attributes, batch_id, "
            "updated_at) SELECT item_id, title, text, category, image_path, attributes::JSON, 'test', "
            "current_timestamp FROM _new_items"
        )
        con.unregister("_new_items")


def delete_items(cfg: GenreConfig, ids: list[str]) -> None:
    with connect(cfg) as con:
        con.executemany("DELETE FROM items WHERE item_id = ?", [[i] for i in ids])
