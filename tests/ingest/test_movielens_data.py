"""Data tests on the real MovieLens 100K (+ TMDB side info)."""
from __future__ import annotations

import duckdb

from genre_core.config import load_config
from genre_core.ingest.pipeline import run_ingest
from genre_core.paths import warehouse_path
from tests.conftest import REPO


def test_movielens_100k_ingests_completely_and_idempotently(genre_home, ml100k, tmdb):
    cfg = load_config(REPO / "conf" / "movielens-100k.yaml", [f"data_dir={ml100k.parent}"])
    first = run_ingest(cfg, progress=False)
    assert first["totals"] == {"items": 1682, "users": 943, "interactions": 100000, "rejects": 0}
    for b in first["batches"]:
        assert b["status"] == "accepted"
        assert b["rows_in"] == b["rows_accepted"] + b["rows_rejected"]
        assert b["validation"]["success"] is True
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        with_text, with_image = con.execute("SELECT count(text), count(image_path) FROM items").fetchall()[0]
        assert with_text >= 1660 and with_image == 1663  # 18 overviews empty, 19 posters missing
        title, category = con.execute("SELECT title, category FROM items WHERE item_id = '543'").fetchall()[0]
        assert title == "Misérables, Les (1995)"  # latin-1 decoded
        assert category == "Drama|Musical"
        hist = dict(con.execute("SELECT value, count(*) FROM interactions GROUP BY 1").fetchall())
        assert hist == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
        assert con.execute("SELECT count(*) FROM interactions WHERE ts IS NULL").fetchall()[0][0] == 0
    finally:
        con.close()
    second = run_ingest(cfg, progress=False)
    assert [b["status"] for b in second["batches"]] == ["unchanged"] * 3
    assert sum(b["rows_added"] for b in second["batches"]) == 0
    assert second["totals"] == first["totals"]


def test_without_tmdb_item_text_is_title_and_genres_only(genre_home, ml100k):
    cfg = load_config(REPO / "conf" / "movielens-100k.yaml", [f"data_dir={ml100k.parent}", "dataset.tmdb_path=null"])
    run_ingest(cfg, progress=False)
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        assert con.execute("SELECT count(text), count(image_path), count(category) FROM items").fetchall()[0] == (0, 0, 1682)
    finally:
        con.close()
