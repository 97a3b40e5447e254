"""Events in the recommend stage: explicit negatives (MIND skips) are neither "seen" nor "because" items."""
from __future__ import annotations

import duckdb
import polars as pl

from genre_core.events import EventRule
from genre_core.paths import serving_path
from genre_core.recommend.pipeline import recommend_with_model
from genre_core.warehouse import connect
from tests.recommend.conftest import make_world


def _recs(world) -> pl.DataFrame:  # noqa: ANN001
    recommend_with_model(world.cfg, world.model, model_name="tiny", model_version="1", model_run_id="r",
                         progress=False)
    con = duckdb.connect(str(serving_path(world.cfg)), read_only=True)
    try:
        return pl.from_arrow(con.sql("SELECT user_id, rank, item_id, because_item_id FROM recommendations")
                             .to_arrow_table())
    finally:
        con.close()


def test_skips_are_not_seen_and_never_because(genre_home) -> None:  # noqa: ANN001
    world = make_world(genre_home)
    first = _recs(world)
    warm = first.filter(~pl.col("user_id").is_in(world.cold_users) & (pl.col("rank") == 1))
    skipped = list(warm.select("user_id", "item_id").iter_rows())  # each warm user skips their top item
    with connect(world.cfg) as con:
        con.executemany("INSERT INTO interactions (event_key, user_id, item_id, event_type, value, batch_id) "
                        "VALUES (?, ?, ?, 'skip', 0, 'b2')", [[f"s{n}", u, i] for n, (u, i) in enumerate(skipped)])

    # old semantics (no events rules): the skip is a like, so it is masked and becomes a "because" item
    old = _recs(world)
    pairs = set(old.select("user_id", "item_id").iter_rows())
    assert not pairs & set(skipped)
    assert set(old.select("user_id", "because_item_id").iter_rows()) & set(skipped)

    world.cfg.events = {"rating": EventRule(role="positive"), "skip": EventRule(role="negative")}
    new = _recs(world)
    because = set(new.select("user_id", "because_item_id").iter_rows())
    assert not because & set(skipped)
    # not "seen": the model still ranks the skipped item first, and the list shows it (the model decides)
    top = set(new.filter(pl.col("rank") == 1).select("user_id", "item_id").iter_rows())
    assert set(skipped) <= top
