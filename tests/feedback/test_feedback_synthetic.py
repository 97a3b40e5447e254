"""The feedback stage on a small hand-made world: real warehouse and serving DuckDB files, real MLflow store.

Catalogue a..f. Batch b0 (before any publication): u1 clicks a, b; u2 clicks a; u3 clicks c. Run R1 publishes
u1 [c, d, e], u2 [b, c, d], u3 [a, d, f]. Batch b1: u1 clicks d and skips e, u2 clicks e and a again (already
a positive of u2: cannot be a hit), u4 (no list) clicks a. Run R2 publishes u1 [e, f, c]; batch b2: u1 clicks
f. Events: click positive, skip negative.
"""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from genre_core.config import load_config
from genre_core.feedback.metrics import feedback_metrics
from genre_core.feedback.pipeline import run_feedback
from genre_core.paths import serving_path
from genre_core.recommend.publish import RunRecord, publish
from genre_core.tracking import client, experiment_id
from genre_core.warehouse import connect

T0 = datetime(2026, 1, 1, 0, 0)  # naive UTC


def _local(utc: datetime) -> datetime:
    """ingest_batches store naive local time (datetime.now())."""
    return utc.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def _batch(con, bid: str, at: datetime, events: list[tuple[str, str, str]]) -> None:  # noqa: ANN001
    con.execute("INSERT INTO ingest_batches VALUES (?, 'toy', 'interactions', 'x.csv', 'sha', ?, ?, 0, ?, "
                "'accepted', NULL, NULL, ?, ?)", [bid, len(events), len(events), len(events), _local(at), _local(at)])
    for j, (u, i, ev) in enumerate(events):
        con.execute("INSERT INTO interactions VALUES (?, ?, ?, ?, ?, ?, FALSE, ?)",
                    [f"{bid}-{j}", u, i, ev, 1.0 if ev == "click" else 0.0, at - timedelta(minutes=30 - j), bid])


def _publish(cfg, run_id: str, at: datetime, lists: dict[str, list[str]]) -> None:  # noqa: ANN001
    recs = pl.DataFrame([{"user_id": u, "rank": r + 1, "item_id": i, "score": 1.0 - r / 10, "because_item_id": None}
                         for u, items in lists.items() for r, i in enumerate(items)])
    run = RunRecord(run_id, "hybrid", run_id[-1], "mlflow-run", 3, len(lists), recs.height, 0, at, at)
    publish(serving_path(cfg), recs, run, keep_runs=3)


OVERRIDES = ["events.click.role=positive", "events.skip.role=negative", "feedback.k_values=[2,3]"]


def toy_world():  # noqa: ANN201
    """Warehouse with b0, R1 published, b1 ingested (in the current GENRE_HOME); returns the config."""
    cfg = load_config(None, OVERRIDES)
    with connect(cfg) as con:
        con.execute("INSERT INTO items (item_id) VALUES ('a'), ('b'), ('c'), ('d'), ('e'), ('f')")
        _batch(con, "b0", T0, [("u1", "a", "click"), ("u1", "b", "click"), ("u2", "a", "click"), ("u3", "c", "click")])
    _publish(cfg, "R1", T0 + timedelta(hours=1), {"u1": ["c", "d", "e"], "u2": ["b", "c", "d"], "u3": ["a", "d", "f"]})
    with connect(cfg) as con:
        _batch(con, "b1", T0 + timedelta(hours=2), [("u1", "d", "click"), ("u1", "e", "skip"), ("u2", "e", "click"),
                                                    ("u2", "a", "click"), ("u4", "a", "click")])
    return cfg


@pytest.fixture
def cfg(genre_home):  # noqa: ANN001
    return toy_world()


def test_feedback_rows_match_hand_computation(cfg) -> None:  # noqa: ANN001
    out = run_feedback(cfg)
    rows = {(r["run_id"], r["k"]): r for r in out["rows"]}
    assert set(rows) == {("R1", 2), ("R1", 3)}
    r3, r2 = rows["R1", 3], rows["R1", 2]
    # shown u1, u2, u3; active u1, u2 (u4 had no list); evaluated: u1 {d}, u2 {e} (u2's a is a re-click)
    assert (r3["users_shown"], r3["users_active"], r3["users_evaluated"], r3["hits"]) == (3, 2, 2, 1)
    assert r3["active_share"] == pytest.approx(2 / 3)
    assert (r3["hit_rate"], r3["precision"], r3["recall"]) == pytest.approx((0.5, (1 / 3) / 2, 0.5))
    assert r3["coverage"] == pytest.approx(6 / 6) and r2["coverage"] == pytest.approx(4 / 6)
    assert (r2["hit_rate"], r2["precision"], r2["recall"]) == pytest.approx((0.5, 0.25, 0.5))
    # before R1: 3 users with positives; a: 2 users, b: 1, c: 1, d: 0 -> -log2((n_i + 1) / 4)
    bits = {"a": -math.log2(3 / 4), "b": 1.0, "c": 1.0, "d": 2.0}
    assert r2["novelty"] == pytest.approx(sum(bits[i] for i in "cdbcad") / 6)
    assert r3["window_start"] == T0 + timedelta(hours=2) - timedelta(minutes=30)
    assert r3["batches"] == 1 and r3["model_version"] == "1" and r3["new_interactions"] == 5

    with connect(cfg, read_only=True) as con:
        table = con.sql("SELECT run_id, k, hit_rate FROM feedback ORDER BY k").fetchall()
    assert table == [("R1", 2, 0.5), ("R1", 3, 0.5)]
    c = client(cfg)
    arts = [a.path for a in c.list_artifacts(out["mlflow_run_id"], "plots")]
    assert arts == ["plots/feedback_trend.png"]
    hist = c.get_metric_history(out["mlflow_run_id"], "feedback.hit_rate_at_3")
    assert [m.value for m in hist] == [0.5]

    # a rerun with nothing new changes nothing and logs nothing
    again = run_feedback(cfg)
    assert again["rows"] == [] and again["unchanged"] == 2 and again["mlflow_run_id"] is None

    # the next night: R2 is published, then b2 arrives; b2 belongs to R2 only, R1 keeps its rows
    _publish(cfg, "R2", T0 + timedelta(hours=3), {"u1": ["e", "f", "c"]})
    with connect(cfg) as con:
        _batch(con, "b2", T0 + timedelta(hours=4), [("u1", "f", "click")])
    third = run_feedback(cfg)
    assert {(r["run_id"], r["k"]) for r in third["rows"]} == {("R2", 2), ("R2", 3)}
    r = next(r for r in third["rows"] if r["k"] == 2)
    assert (r["users_shown"], r["hit_rate"], r["precision"], r["recall"]) == (1, 1.0, 0.5, 1.0)
    runs = c.search_runs([experiment_id(c, cfg)], filter_string="tags.`genre.stage` = 'feedback'")
    assert len(runs) == 2


def test_feedback_without_published_lists_says_why(genre_home) -> None:  # noqa: ANN001
    cfg = load_config(None)
    with connect(cfg) as con:
        _batch(con, "b0", T0, [("u1", "a", "rating")])
    out = run_feedback(cfg)
    assert out["rows"] == [] and "no published run" in out["reason"]


def test_feedback_metrics_rejects_bad_k() -> None:
    empty = pl.DataFrame({"user_id": [], "item_id": [], "positive": []},
                         schema={"user_id": pl.String, "item_id": pl.String, "positive": pl.Boolean})
    with pytest.raises(ValueError, match="k"):
        feedback_metrics(empty.with_columns(rank=pl.lit(1)), empty, empty, 0, 5)
