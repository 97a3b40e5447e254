"""Subprocess helpers for the PostgreSQL publish tests (run as a script, not collected by pytest).

``publish URL RUN_ID N_USERS K SEED MARKER PAUSE_S``: publish a synthetic run; inside the swap transaction, just
before COMMIT, touch MARKER and sleep PAUSE_S (the test SIGKILLs the process there).
``read URL EXPECTED_ROWS STOP_FILE OUT_JSON``: until STOP_FILE exists, read in REPEATABLE READ transactions: the
runs in `recommendations` (exactly one, with EXPECTED_ROWS rows), its run record and its history rows (every 4th
read waits 50 ms between statements, across publishes); touches OUT_JSON.ready after the first read; writes
counts of reads, errors and distinct runs seen to OUT_JSON. The password comes from $GENRE_PG_PASSWORD.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from genre_core.recommend.postgres import connect_postgres, publish_postgres  # noqa: E402
from tests.recommend.conftest import run_record, synthetic_recs  # noqa: E402


def do_publish(url: str, run_id: str, n_users: int, k: int, seed: int, marker: str, pause_s: float) -> None:
    def hook() -> None:
        Path(marker).touch()
        time.sleep(pause_s)

    publish_postgres(url, synthetic_recs(n_users, k, seed), run_record(run_id, n_users, k), keep_runs=2,
                     before_commit=hook)


def do_read(url: str, expected_rows: int, stop_file: str, out_json: str) -> None:
    reads, errors, runs_seen, problems = 0, 0, set(), []
    con = None
    while not Path(stop_file).exists():
        try:
            if con is None or reads % 25 == 0:  # reconnect now and then: new sessions see swaps too
                if con is not None:
                    con.close()
                con = connect_postgres(url, application_name="genre-test-reader")
            with con.transaction(), con.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur.execute("SELECT run_id, count(*) FROM recommendations GROUP BY run_id")
                per_run = cur.fetchall()
                run = per_run[0][0] if per_run else None
                cur.execute("SELECT count(*) FROM recommendation_runs WHERE run_id = %s AND status = 'complete'",
                            [run])
                recorded = cur.fetchone()[0]
                if reads % 4 == 0:
                    time.sleep(0.05)
                cur.execute("SELECT count(*) FROM recommendations_history WHERE run_id = %s", [run])
                history = cur.fetchone()[0]
            reads += 1
            if reads == 1:
                Path(out_json + ".ready").touch()
            if len(per_run) != 1 or per_run[0][1] != expected_rows or recorded != 1 or history != expected_rows:
                problems.append(f"runs={per_run} recorded={recorded} history={history}")
            else:
                runs_seen.add(run)
        except Exception as exc:  # the test asserts there are none; report what they were
            errors += 1
            problems.append(f"{type(exc).__name__}: {exc}")
            con = None
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
