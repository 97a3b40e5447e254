"""Publish a complete run into the serving DuckDB file by writing a new file aside and swapping it in.

DuckDB locks a database file per process, so what users query while the pipeline runs lives in its own file,
which no process ever opens read-write in place. A publish:

1. takes an exclusive ``<serving>.lock`` (one publisher at a time) and deletes stale ``.<name>.tmp-*`` files left
   by a publish that was killed;
2. writes a complete new database next to the serving file: the new run, the previous ``keep_runs - 1`` runs
   and every run record copied from the current serving file (attached read-only, so readers are not blocked);
3. checkpoints, closes and fsyncs it, then ``os.replace``-s it over the serving file and fsyncs the directory.

A reader that opened the old file keeps a consistent view of it (POSIX keeps the unlinked inode alive); a new
open sees the new file; a kill at any point before the rename leaves the previous file untouched. Replacing a
file that readers hold open needs POSIX semantics (Linux, macOS), not Windows.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

RUN_COLUMNS = (
    "run_id", "model_name", "model_version", "model_run_id", "k", "users", "rows", "cold_users",
    "started_at", "finished_at", "status",
)
REC_INPUT_COLUMNS = ("user_id", "rank", "item_id", "score", "because_item_id")
SIMILAR_INPUT_COLUMNS = ("item_id", "rank", "similar_item_id", "score")
EXPLANATION_INPUT_COLUMNS = ("user_id", "rank", "item_id", "because_item_id", "explanation", "llm_backend", "llm_model")


def changes_view(kept: str) -> str:
    """``CREATE VIEW recommendation_changes`` (DuckDB and PostgreSQL alike): what changed between the latest and
    the previous kept run: 'added' / 'removed' items per user, and items that stayed but 'moved' rank. When there
    is no previous kept run, every current row shows as 'added'. ``kept``: a query of (run_id, age), age 1 = the
    latest complete run that still has rows in ``recommendations_history``."""
    return f"""CREATE VIEW recommendation_changes AS
    WITH kept AS ({kept}),
    cur AS (SELECT h.user_id, h.item_id, h.rank FROM recommendations_history h
            WHERE h.run_id = (SELECT run_id FROM kept WHERE age = 1)),
    prev AS (SELECT h.user_id, h.item_id, h.rank FROM recommendations_history h
             WHERE h.run_id = (SELECT run_id FROM kept WHERE age = 2))
    SELECT coalesce(cur.user_id, prev.user_id) AS user_id, coalesce(cur.item_id, prev.item_id) AS item_id,
           CASE WHEN prev.item_id IS NULL THEN 'added' WHEN cur.item_id IS NULL THEN 'removed' ELSE 'moved' END
               AS change,
           prev.rank AS previous_rank, cur.rank AS rank,
           (SELECT run_id FROM kept WHERE age = 2) AS previous_run_id, (SELECT run_id FROM kept WHERE age = 1) AS run_id
    FROM cur FULL OUTER JOIN prev ON cur.user_id = prev.user_id AND cur.item_id = prev.item_id
    WHERE cur.rank IS DISTINCT FROM prev.rank"""


SCHEMA = [
    """CREATE TABLE recommendation_runs (
        run_id VARCHAR PRIMARY KEY, model_name VARCHAR, model_version VARCHAR, model_run_id VARCHAR,
        k INTEGER, users BIGINT, rows BIGINT, cold_users BIGINT,
        started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR)""",
    """CREATE TABLE recommendations (
        user_id VARCHAR NOT NULL, rank INTEGER NOT NULL, item_id VARCHAR NOT NULL, score FLOAT,
        because_item_id VARCHAR, run_id VARCHAR NOT NULL, model_name VARCHAR, model_version VARCHAR,
        generated_at TIMESTAMP NOT NULL)""",
    "CREATE TABLE recommendations_history AS SELECT * FROM recommendations LIMIT 0",
    """CREATE TABLE similar_items (
        item_id VARCHAR NOT NULL, rank INTEGER NOT NULL, similar_item_id VARCHAR NOT NULL, score FLOAT,
        run_id VARCHAR NOT NULL)""",
    # one LLM sentence per explained recommendation of the latest run (genre_core.llm.explain); empty when off
    """CREATE TABLE explanations (
        user_id VARCHAR NOT NULL, rank INTEGER NOT NULL, item_id VARCHAR NOT NULL, because_item_id VARCHAR,
        explanation VARCHAR NOT NULL, llm_backend VARCHAR, llm_model VARCHAR, run_id VARCHAR NOT NULL,
        model_version VARCHAR, generated_at TIMESTAMP NOT NULL)""",
    changes_view("""SELECT run_id, row_number() OVER (ORDER BY finished_at DESC, run_id DESC) AS age
        FROM recommendation_runs
        WHERE status = 'complete' AND run_id IN (SELECT DISTINCT run_id FROM recommendations_history)"""),
]


@dataclass(frozen=True)
class RunRecord:
    """One row of ``recommendation_runs``; times are naive UTC."""

    run_id: str
    model_name: str
    model_version: str
    model_run_id: str
    k: int
    users: int
    rows: int
    cold_users: int
    started_at: datetime
    finished_at: datetime
    status: str = "complete"


def check_frames(recs: pl.DataFrame, similar: pl.DataFrame | None, keep_runs: int,
                 explanations: pl.DataFrame | None = None) -> None:
    """ValueError naming what is wrong when ``recs``/``similar``/``explanations`` lack input columns or
    ``keep_runs`` < 1 (every publish target takes the same frames)."""
    if keep_runs < 1:
        raise ValueError(f"keep_runs must be >= 1, got {keep_runs}")
    missing = [c for c in REC_INPUT_COLUMNS if c not in recs.columns]
    if missing:
        raise ValueError(f"recommendations frame lacks columns {missing}; has {recs.columns}")
    if similar is not None and (bad := [c for c in SIMILAR_INPUT_COLUMNS if c not in similar.columns]):
        raise ValueError(f"similar_items frame lacks columns {bad}; has {similar.columns}")
    if explanations is not None and (bad := [c for c in EXPLANATION_INPUT_COLUMNS if c not in explanations.columns]):
        raise ValueError(f"explanations frame lacks columns {bad}; has {explanations.columns}")


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@contextlib.contextmanager
def _publish_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def tmp_files(path: Path) -> list[Path]:
    """Leftovers of interrupted publishes next to the serving file (new file and its WAL)."""
    return sorted(path.parent.glob(f".{path.name}.tmp-*"))


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_previous(con: duckdb.DuckDBPyConnection, path: Path, keep_previous: int) -> None:
    """Copy run records and the newest ``keep_previous`` complete runs' history from the current serving file."""
    con.execute(f"ATTACH {_sql_path(path)} AS prev (READ_ONLY)")
    try:
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'prev'").fetchall()}
        missing = {"recommendation_runs", "recommendations_history"} - tables
        if missing:
            raise RuntimeError(f"serving file {path} lacks tables {sorted(missing)}: not a GENRE serving file?")
        cols = ", ".join(RUN_COLUMNS)
        con.execute(f"INSERT INTO recommendation_runs SELECT {cols} FROM prev.recommendation_runs")
        if keep_previous > 0:
            con.execute(
                """INSERT INTO recommendations_history
                   SELECT h.* FROM prev.recommendations_history h
                   WHERE h.run_id IN (SELECT run_id FROM prev.recommendation_runs
                                      WHERE status = 'complete'
                                        AND run_id IN (SELECT DISTINCT run_id FROM prev.recommendations_history)
                                      ORDER BY finished_at DESC, run_id DESC LIMIT ?)
                   ORDER BY h.run_id, h.user_id, h.rank""",
                [keep_previous],
            )
    finally:
        con.execute("DETACH prev")


def publish(
    path: Path,
    recs: pl.DataFrame,
    run: RunRecord,
    *,
    similar: pl.DataFrame | None = None,
    keep_runs: int = 3,
    before_swap: Callable[[], None] | None = None,
    explanations: pl.DataFrame | None = None,
) -> Path:
    """Atomically replace the serving file at ``path`` with one holding ``recs`` as the latest complete run.

    Args:
        recs: columns user_id, rank, item_id, score, because_item_id (one row per user and rank).
        run: the run record; its run_id, model_name, model_version and finished_at tag every row.
        similar: optional columns item_id, rank, similar_item_id, score (replaces the previous similar_items).
        keep_runs: complete runs kept in ``recommendations_history``, this one included (>= 1).
        before_swap: called after the new file is durable and before the rename (tests use it to kill the
            process mid-publish).
        explanations: optional columns ``EXPLANATION_INPUT_COLUMNS`` (one row per explained recommendation of
            this run); the table ``explanations`` holds this run's rows only (empty when None).
    Returns the serving file path.
    """
    check_frames(recs, similar, keep_runs, explanations)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _publish_lock(path):
        for stale in tmp_files(path):
            stale.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{run.run_id}-{os.getpid()}")
        con = duckdb.connect(str(tmp))
        try:  # on any failure (KeyboardInterrupt included) the half-written file is removed
            for stmt in SCHEMA:
                con.execute(stmt)
            if path.exists():
                _copy_previous(con, path, keep_runs - 1)
            new_recs = recs.select(REC_INPUT_COLUMNS).to_arrow()
            con.register("new_recs", new_recs)
            con.execute(
                """INSERT INTO recommendations
                   SELECT user_id, rank, item_id, score, because_item_id, ?, ?, ?, ?
                   FROM new_recs ORDER BY user_id, rank""",
                [run.run_id, run.model_name, run.model_version, run.finished_at],
            )
            con.unregister("new_recs")
            con.execute("INSERT INTO recommendations_history SELECT * FROM recommendations")
            if similar is not None:
                con.register("new_similar", similar.select(SIMILAR_INPUT_COLUMNS).to_arrow())
                con.execute(
                    """INSERT INTO similar_items SELECT item_id, rank, similar_item_id, score, ?
                       FROM new_similar ORDER BY item_id, rank""",
                    [run.run_id],
                )
                con.unregister("new_similar")
            if explanations is not None:
                con.register("new_expl", explanations.select(EXPLANATION_INPUT_COLUMNS).to_arrow())
                con.execute(
                    f"""INSERT INTO explanations SELECT {', '.join(EXPLANATION_INPUT_COLUMNS)}, ?, ?, ?
                       FROM new_expl ORDER BY user_id, rank""",
                    [run.run_id, run.model_version, run.finished_at],
                )
                con.unregister("new_expl")
            record = asdict(run)
            con.execute(
                f"INSERT INTO recommendation_runs ({', '.join(RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                [record[c] for c in RUN_COLUMNS],
            )
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            for leftover in tmp_files(path):
                leftover.unlink(missing_ok=True)
            raise
        con.close()
        _fsync(tmp)
        if before_swap is not None:
            before_swap()
        # a WAL next to the serving file can only come from someone writing to it in place; it belongs to the
        # old file and must not be replayed onto the new one
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    return path
