"""warehouse.publish_to=postgres against a real PostgreSQL 15 server started on loopback by the test: bulk publish,
kept runs, atomic swap under a concurrent reader process, a publish killed mid-swap, password handling."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from bench.pgserver import PgServer, find_pg_bin, start_pg_server

psycopg = pytest.importorskip("psycopg", reason="publish_to=postgres needs psycopg (the 'postgres' extra)")

from genre_core.recommend.postgres import PASSWORD_ENV, STAGE_PREFIX, connect_postgres, publish_postgres  # noqa: E402

WORKER = Path(__file__).resolve().with_name("pg_worker.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
                    "(install postgresql-15 or set GENRE_PG_BIN)")
    server = start_pg_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh schema on the module's server; the URL selects it, the password is in $GENRE_PG_PASSWORD."""
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with connect_postgres(pg.url) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    return f"{pg.url}?options=-csearch_path%3D{schema}"


def _rows(url: str, sql: str, params: list | None = None) -> list[tuple]:
    with connect_postgres(url) as con:
        return con.execute(sql, params or []).fetchall()


def _similar(n_items: int, k: int, seed: int, recs_factory: Callable) -> pl.DataFrame:
    return recs_factory(n_items, k, seed).rename({"user_id": "item_id", "item_id": "similar_item_id"}) \
        .drop("because_item_id")


def _worker(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited early ({proc.returncode}): {proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"worker did not reach {path.name} within {timeout_s}s")
        time.sleep(0.02)


def test_latest_run_history_pruning_and_changes(pg_url: str, recs_factory, run_factory) -> None:
    t0 = datetime(2026, 1, 1)
    frames = [recs_factory(30, 5, seed) for seed in range(4)]
    for i, frame in enumerate(frames):
        out = publish_postgres(pg_url, frame, run_factory(f"run{i}", 30, 5, t0 + timedelta(days=i)),
                               similar=_similar(12, 3, i, recs_factory), keep_runs=2)
        assert out["rows"] == 150 and out["similar_rows"] == 36
    assert out["pruned_runs"] == ["run1"] and "password" not in out["target"]
    assert _rows(pg_url, "SELECT run_id, count(*) FROM recommendations GROUP BY 1") == [("run3", 150)]
    assert _rows(pg_url, "SELECT DISTINCT run_id FROM recommendations_history ORDER BY 1") == [("run2",), ("run3",)]
    assert _rows(pg_url, "SELECT run_id FROM recommendation_runs ORDER BY 1") == [(f"run{i}",) for i in range(4)]
    assert _rows(pg_url, "SELECT run_id, count(*) FROM similar_items GROUP BY 1") == [("run3", 36)]
    got = pl.DataFrame(_rows(pg_url, "SELECT user_id, rank, item_id, score, because_item_id FROM recommendations"),
                       schema=frames[3].schema, orient="row")
    assert got.sort("user_id", "rank").equals(frames[3].sort("user_id", "rank"))  # float32 scores round-trip
    cur = {(u, i) for u, i in frames[3].select("user_id", "item_id").iter_rows()}
    prev = {(u, i) for u, i in frames[2].select("user_id", "item_id").iter_rows()}
    changes = dict(_rows(pg_url, "SELECT change, count(*) FROM recommendation_changes GROUP BY 1"))
    assert changes["added"] == len(cur - prev) and changes["removed"] == len(prev - cur)
    assert _rows(pg_url, "SELECT DISTINCT previous_run_id, run_id FROM recommendation_changes") == [("run2", "run3")]
    assert _rows(pg_url, "SELECT count(*) FROM pg_class WHERE relname LIKE %s", [STAGE_PREFIX + "%"]) == [(0,)]
    with pytest.raises(ValueError, match="already published"):
        publish_postgres(pg_url, frames[0], run_factory("run3", 30, 5), keep_runs=2)


def test_bad_input_and_password_handling(pg: PgServer, pg_url: str, recs_factory, run_factory,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        publish_postgres(pg_url, recs_factory(2, 2, 0).drop("score"), run_factory("r", 2, 2))
    with pytest.raises(ValueError, match="must not contain a password"):
        publish_postgres(pg.url.replace("genre@", f"genre:{pg.password}@"), recs_factory(2, 2, 0),
                         run_factory("r", 2, 2))
    with pytest.raises(ValueError, match=r"postgres\.url"):
        publish_postgres(None, recs_factory(2, 2, 0), run_factory("r", 2, 2))
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        publish_postgres(pg_url, recs_factory(2, 2, 0), run_factory("r", 2, 2))


@pytest.mark.slow
def test_publish_killed_in_the_swap_leaves_previous_run(pg_url: str, recs_factory, run_factory,
                                                        tmp_path: Path) -> None:
    publish_postgres(pg_url, recs_factory(50, 4, 0), run_factory("old", 50, 4), keep_runs=2)
    marker = tmp_path / "about-to-commit"
    proc = _worker("publish", pg_url, "new", 50, 4, 1, marker, 120)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _rows(pg_url, "SELECT run_id, count(*) FROM recommendations GROUP BY 1") == [("old", 200)]
    assert _rows(pg_url, "SELECT run_id FROM recommendation_runs") == [("old",)]
    stale = _rows(pg_url, "SELECT count(*) FROM pg_class WHERE relname LIKE %s", [STAGE_PREFIX + "%"])[0][0]
    assert stale == 1, "the killed publish should have left its staging table (loaded, never attached)"
    out = publish_postgres(pg_url, recs_factory(50, 4, 2), run_factory("next", 50, 4), keep_runs=2)
    assert len(out["dropped_stale"]) == 1, "stale staging tables are dropped by the next publish"
    assert _rows(pg_url, "SELECT run_id FROM recommendation_runs ORDER BY 1") == [("next",), ("old",)]
    assert _rows(pg_url, "SELECT run_id, count(*) FROM recommendations GROUP BY 1") == [("next", 200)]


@pytest.mark.slow
def test_concurrent_reader_process_never_sees_partial_run(pg_url: str, recs_factory, run_factory,
                                                          tmp_path: Path) -> None:
    n_users, k = 2000, 10
    publish_postgres(pg_url, recs_factory(n_users, k, 0), run_factory("r0", n_users, k), keep_runs=2)
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = _worker("read", pg_url, n_users * k, stop, out)
    try:
        _wait_for(Path(str(out) + ".ready"), reader)
        for i in range(1, 7):
            publish_postgres(pg_url, recs_factory(n_users, k, i), run_factory(f"r{i}", n_users, k), keep_runs=2)
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    result = json.loads(out.read_text())
    assert result["errors"] == 0 and result["problems"] == [], result
    assert len(result["runs_seen"]) >= 2, f"the reader should have seen several runs: {result}"
    assert result["reads"] >= 10, result


def test_recommend_stage_publishes_the_same_rows_to_postgres(genre_home: Path, pg_url: str) -> None:
    import duckdb

    from genre_core.paths import serving_path
    from genre_core.recommend.pipeline import recommend_with_model
    from tests.recommend.conftest import make_world

    world = make_world(genre_home)
    kw = dict(model_name="tiny", model_version="3", model_run_id="abc", progress=False)
    to_duckdb = recommend_with_model(world.cfg, world.model, **kw)
    world.cfg.warehouse = world.cfg.warehouse.model_validate({"publish_to": "postgres", "postgres": {"url": pg_url}})
    to_pg = recommend_with_model(world.cfg, world.model, **kw)
    assert to_pg["published_to"] == "postgres" and to_pg["serving_path"] is None
    assert to_pg["rows"] == to_duckdb["rows"] == len(world.all_users) * world.cfg.recommend.k
    cols = "user_id, rank, item_id, score, because_item_id, model_version"
    con = duckdb.connect(str(serving_path(world.cfg)), read_only=True)
    try:
        expected = con.execute(f"SELECT {cols} FROM recommendations ORDER BY user_id, rank").fetchall()
        expected_sim = con.execute("SELECT item_id, rank, similar_item_id, score FROM similar_items "
                                   "ORDER BY item_id, rank").fetchall()
    finally:
        con.close()
    pg_cols = cols.replace("score", "score::float8")  # float4 -> float8 is exact, as DuckDB's FLOAT -> Python
    assert _rows(pg_url, f"SELECT {pg_cols} FROM recommendations ORDER BY user_id, rank") == expected
    assert _rows(pg_url, "SELECT item_id, rank, similar_item_id, score::float8 FROM similar_items "
                         "ORDER BY item_id, rank") == expected_sim
    assert _rows(pg_url, "SELECT run_id, users, rows, cold_users FROM recommendation_runs") == [
        (to_pg["run_id"], len(world.all_users), to_pg["rows"], len(world.cold_users))]


def _explanations(recs: pl.DataFrame, top: int, tag: str) -> pl.DataFrame:
    """One explanation row for each of the top ``top`` recommendations per user of ``recs``."""
    return (recs.filter(pl.col("rank") <= top)
            .select("user_id", "rank", "item_id", "because_item_id")
            .with_columns(explanation=pl.format("{} because, \"quoted\", of {}", pl.lit(tag), pl.col("item_id")),
                          llm_backend=pl.lit("openai"), llm_model=pl.lit("stub")))


def test_explanations_published_with_their_run_and_pruned_with_it(pg_url: str, recs_factory, run_factory) -> None:
    """Explanations attach in the run's swap (view = latest run), are pruned with it, a run without them shows
    none, a schema published into before explanations existed gets the table, bad frames are refused."""
    t0 = datetime(2026, 1, 1)
    # a schema that already holds a run from before explanations existed
    publish_postgres(pg_url, recs_factory(20, 4, 0), run_factory("old", 20, 4, t0), keep_runs=2)
    with connect_postgres(pg_url) as con:
        con.execute("DROP VIEW explanations")
        con.execute("DROP TABLE explanations_history")
    for i in range(1, 4):
        recs = recs_factory(20, 4, i)
        out = publish_postgres(pg_url, recs, run_factory(f"run{i}", 20, 4, t0 + timedelta(days=i)), keep_runs=2,
                               explanations=_explanations(recs, 2, f"r{i}"))
        assert out["explanation_rows"] == 40
    assert _rows(pg_url, "SELECT run_id, count(*) FROM explanations GROUP BY 1") == [("run3", 40)]
    assert _rows(pg_url, "SELECT DISTINCT run_id FROM explanations_history ORDER BY 1") == [("run2",), ("run3",)]
    got = _rows(pg_url, "SELECT r.item_id, e.explanation, e.llm_model FROM recommendations r JOIN explanations e "
                        "USING (user_id, rank, item_id) WHERE r.user_id = 'u00000' ORDER BY r.rank")
    assert len(got) == 2 and all(text == f'r3 because, "quoted", of {item}' and model == "stub"
                                 for item, text, model in got)
    publish_postgres(pg_url, recs_factory(20, 4, 9), run_factory("plain", 20, 4, t0 + timedelta(days=9)), keep_runs=2)
    assert _rows(pg_url, "SELECT count(*) FROM explanations") == [(0,)]
    with pytest.raises(ValueError, match=r"explanations frame lacks columns \['explanation'\]"):
        publish_postgres(pg_url, recs_factory(2, 2, 0), run_factory("bad", 2, 2),
                         explanations=_explanations(recs_factory(2, 2, 0), 1, "x").drop("explanation"))


def test_postgres_target_publishes_the_results_explanations(pg_url: str, recs_factory, run_factory) -> None:
    """Through the publish-target interface (what the recommend stage calls): ``RecommendResult.explanations``
    reaches PostgreSQL."""
    from genre_core.config import load_config
    from genre_core.recommend.merge import RecommendResult
    from genre_core.recommend.targets import TARGETS, publish_with_target

    cfg = load_config(None, ["warehouse.publish_to=postgres", f"warehouse.postgres.url={pg_url}"])
    recs = recs_factory(5, 3, 1)
    result = RecommendResult(recs, None, users=5, cold_users=0, explanations=_explanations(recs, 1, "t"))
    assert TARGETS.get("postgres").publishes_explanations and TARGETS.get("duckdb").publishes_explanations
    out = publish_with_target(cfg, result, run_factory("t1", 5, 3))
    assert out["published_to"] == "postgres"
    assert _rows(pg_url, "SELECT count(*), min(rank), max(rank) FROM explanations") == [(5, 1, 1)]
