"""Real data: MovieLens 100K through run_train with the default config (slow).

Content here is u.item's genre flags (no encoder run), so the test stays minutes, not tens of minutes; the
full TMDB text + poster comparison is in the README table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from genre_core.config import load_config
from genre_core.models.pipeline import run_train
from genre_core.warehouse import connect


def load_ml100k(cfg, folder: Path) -> None:  # noqa: ANN001
    ratings = pl.read_csv(folder / "u.data", separator="\t", has_header=False,
                          new_columns=["user_id", "item_id", "value", "ts"])
    inter = ratings.select(
        pl.format("{}|{}", "user_id", "item_id").alias("event_key"), pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String), pl.col("value").cast(pl.Float64), pl.from_epoch("ts").alias("ts"))
    items = pl.read_csv(folder / "u.item", separator="|", has_header=False, encoding="latin-1",
                        new_columns=["item_id", "title", "date", "video", "url", *[f"g{k}" for k in range(19)]])
    genres = items.select([f"g{k}" for k in range(19)]).to_numpy().astype(np.float32)
    ids = items["item_id"].cast(pl.String).to_list()
    with connect(cfg) as con:
        con.executemany("INSERT INTO items (item_id, title) VALUES (?, ?)", list(zip(ids, items["title"].to_list())))
        con.register("_i", inter.to_arrow())
        con.execute("""INSERT INTO interactions (event_key, user_id, item_id, event_type, value, ts, is_history,
                       batch_id) SELECT event_key, user_id, item_id, 'rating', value, ts, FALSE, 'ml' FROM _i""")
        con.executemany("""INSERT INTO item_features (item_id, modality, model_id, content_hash, dim, vector,
                           created_at) VALUES (?, 'text', 'genre-flags', ?, 19, ?, now())""",
                        [(i, str(hash(v.tobytes())), v.tolist()) for i, v in zip(ids, genres)])


@pytest.mark.slow
def test_hybrid_beats_baselines_on_ml100k(ml100k: Path, genre_home: Path) -> None:
    # the models this test compares (the default list also trains sasrec and the blend: tens of minutes more)
    cfg = load_config(None, ["train.device=cpu", "train.models=[popularity, itemknn, bpr, content, hybrid]",
                             "train.register_model=hybrid"])
    load_ml100k(cfg, ml100k)
    out = run_train(cfg, progress=False)
    models = out["models"]
    hybrid = models["hybrid"]["ndcg@10"]
    for name in ("popularity", "itemknn", "bpr", "content"):
        assert hybrid > models[name]["ndcg@10"], (name, models[name]["ndcg@10"], hybrid)
    assert models["hybrid"]["cold_item"]["recall@10"] > 1.5 * models["popularity"]["cold_item"]["recall@10"]
    assert out["registered"]["champion"] is True
