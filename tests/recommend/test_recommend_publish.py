"""Publishing into the serving file: atomic swap, kept runs, kill mid-publish, concurrent reader process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from genre_core.recommend.publish import publish, tmp_files

WORKER = Path(__file__).resolve().with_name("serving_worker.py")
REPO = Path(__file__).resolve().parents[2]


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


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_latest_run_history_pruning_and_changes(tmp_path: Path, recs_factory, run_factory) -> None:
    path = tmp_path / "serving.duckdb"
    t0 = datetime(2026, 1, 1)
    frames = [recs_factory(30, 5, seed) for seed in range(4)]
    for i, frame in enumerate(frames):
        publish(path, frame, run_factory(f"run{i}", 30, 5, t0 + timedelta(days=i)), keep_runs=2)
    assert _rows(path, "SELECT DISTINCT run_id FROM recommendations") == [("run3",)]
    assert _rows(path, "SELECT count(*) FROM recommendations") == [(150,)]
    assert _rows(path, "SELECT DISTINCT run_id FROM recommendations_history ORDER BY 1") == [("run2",), ("run3",)]
    assert _rows(path, "SELECT run_id FROM recommendation_runs ORDER BY 1") == [(f"run{i}",) for i in range(4)]
    cur = {(u, i) for u, i in frames[3].select("user_id", "item_id").iter_rows()}
    prev = {(u, i) for u, i in frames[2].select("user_id", "item_id").iter_rows()}
    changes = dict(_rows(path, "SELECT change, count(*) FROM recommendation_changes GROUP BY 1"))
    assert changes["added"] == len(cur - prev) and changes["removed"] == len(prev - cur)
    assert _rows(path, "SELECT DISTINCT previous_run_id, run_id FROM recommendation_changes") == [("run2", "run3")]
    assert not tmp_files(path)


def test_publish_rejects_bad_input(tmp_path: Path, recs_factory, run_factory) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        publish(tmp_path / "s.duckdb", recs_factory(2, 2, 0).drop("score"), run_factory("r", 2, 2))
    with pytest.raises(ValueError, match="keep_runs"):
        publish(tmp_path / "s.duckdb", recs_factory(2, 2, 0), run_factory("r", 2, 2), keep_runs=0)
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.slow
def test_publish_killed_before_swap_leaves_previous_run(tmp_path: Path, recs_factory, run_factory) -> None:
    path = tmp_path / "serving.duckdb"
    publish(path, recs_factory(50, 4, 0), run_factory("old", 50, 4), keep_runs=2)
    marker = tmp_path / "about-to-swap"
    proc = _worker("publish", path, "new", 50, 4, 1, marker, 120)
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _rows(path, "SELECT run_id, count(*) FROM recommendations GROUP BY 1") == [("old", 200)]
    assert _rows(path, "SELECT run_id FROM recommendation_runs") == [("old",)]
    assert tmp_files(path), "the killed publish should have left its new file aside"
    publish(path, recs_factory(50, 4, 2), run_factory("next", 50, 4), keep_runs=2)
    assert not tmp_files(path), "stale files of the killed publish are cleaned by the next one"
    assert _rows(path, "SELECT run_id FROM recommendation_runs ORDER BY 1") == [("next",), ("old",)]


@pytest.mark.slow
def test_concurrent_reader_process_never_sees_partial_run(tmp_path: Path, recs_factory, run_factory) -> None:
    path, n_users, k = tmp_path / "serving.duckdb", 2000, 10
    publish(path, recs_factory(n_users, k, 0), run_factory("r0", n_users, k), keep_runs=2)
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = _worker("read", path, n_users * k, stop, out)
    try:
        _wait_for(Path(str(out) + ".ready"), reader)
        for i in range(1, 7):
            publish(path, recs_factory(n_users, k, i), run_factory(f"r{i}", n_users, k), keep_runs=2)
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    result = json.loads(out.read_text())
    assert result["errors"] == 0 and result["problems"] == [], result
    assert len(result["runs_seen"]) >= 2, f"the reader should have seen several runs: {result}"
    assert result["reads"] >= 10, result
