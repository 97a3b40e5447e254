"""Subprocess helpers for the publish tests (run as a script, not collected by pytest).

``publish PATH RUN_ID N_USERS K SEED MARKER PAUSE_S``: publish a synthetic run; just before the atomic rename,
touch MARKER and sleep PAUSE_S (the test SIGKILLs the process there).
``read PATH EXPECTED_ROWS STOP_FILE OUT_JSON``: open the serving file read-only in a loop until STOP_FILE exists,
checking that `recommendations` holds exactly one run with EXPECTED_ROWS rows and that the run is recorded and
in the history (every 4th read holds its connection open for 50 ms between queries, across a swap); touches
OUT_JSON.ready after the first read; writes counts of reads, errors and distinct runs seen to OUT_JSON.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
from conftest import run_record, synthetic_recs  # noqa: E402

from genre_core.recommend.publish import publish  # noqa: E402


def do_publish(path: str, run_id: str, n_users: int, k: int, seed: int, marker: str, pause_s: float) -> None:
    def hook() -> None:
        Path(marker).touch()
        time.sleep(pause_s)

    publish(Path(path), synthetic_recs(n_users, k, seed), run_record(run_id, n_users, k), keep_runs=2,
            before_swap=hook)


def do_read(path: str, expected_rows: int, stop_file: str, out_json: str) -> None:
    reads, errors, runs_seen, problems = 0, 0, set(), []
    while not Path(stop_file).exists():
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                per_run = con.execute("SELECT run_id, count(*) FROM recommendations GROUP BY run_id").fetchall()
                recorded = con.execute(
                    "SELECT count(*) FROM recommendation_runs WHERE run_id = ? AND status = 'complete'",
                    [per_run[0][0] if per_run else None],
                ).fetchall()[0][0]
                if reads % 4 == 0:
                    time.sleep(0.05)
                history = con.execute(
                    "SELECT count(*) FROM recommendations_history WHERE run_id = ?",
                    [per_run[0][0] if per_run else None],
                ).fetchall()[0][0]
            finally:
                con.close()
            reads += 1
            if reads == 1:
                Path(out_json + ".ready").touch()
            if len(per_run) != 1 or per_run[0][1] != expected_rows or recorded != 1 or history != expected_rows:
                problems.append(f"runs={per_run} recorded={recorded} history={history}")
            else:
                runs_seen.add(per_run[0][0])
        except Exception as exc:  # the test asserts there are none; report what they were
            errors += 1
            problems.append(f"{type(exc).__name__}: {exc}")
    Path(out_json).write_text(json.dumps(
        {"reads": reads, "errors": errors, "runs_seen": sorted(runs_seen), "problems": problems[:10]}))


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "publish":
        do_publish(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), args[5], float(args[6]))
    elif mode == "read":
        do_read(args[0], int(args[1]), args[2], args[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}; valid: publish, read")
