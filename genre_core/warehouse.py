"""The DuckDB warehouse: one file under GENRE_HOME, schema created and migrated idempotently.

DuckDB locks its file per process, so write connections are held briefly (``with connect(cfg) as con``) and
what users query while the pipeline runs (recommendations, similar items, run records) is published to a
separate serving file that is replaced atomically (see ``genre_core.recommend.publish``).
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from genre_core.config import GenreConfig
from genre_core.paths import warehouse_path

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Each migration is applied once, in order; ``schema_version`` records which ran. Append, never edit.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "core tables: items, users, interactions, ingest_batches, rejects",
        [
            """CREATE TABLE IF NOT EXISTS ingest_batches (
                batch_id VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, entity VARCHAR NOT NULL,
                source VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, rows_in BIGINT NOT NULL,
                rows_accepted BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, rows_added BIGINT NOT NULL,
                status VARCHAR NOT NULL, message VARCHAR, validation JSON,
                started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP)""",
            """CREATE TABLE IF NOT EXISTS rejects (
                batch_id VARCHAR NOT NULL, source VARCHAR NOT NULL, row_number BIGINT NOT NULL,
                rule VARCHAR NOT NULL, detail VARCHAR, raw VARCHAR, rejected_at TIMESTAMP NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS items (
                item_id VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR, category VARCHAR,
                image_path VARCHAR, attributes JSON, batch_id VARCHAR, updated_at TIMESTAMP)""",
            """CREATE TABLE IF NOT EXISTS users (
                user_id VARCHAR PRIMARY KEY, attributes JSON, batch_id VARCHAR, updated_at TIMESTAMP)""",
            # event_key = sha1(user_id, item_id, event_type, is_history, ts): the natural key of an event
            """CREATE TABLE IF NOT EXISTS interactions (
                event_key VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
                event_type VARCHAR NOT NULL, value DOUBLE, ts TIMESTAMP,
                is_history BOOLEAN NOT NULL DEFAULT FALSE, batch_id VARCHAR NOT NULL)""",
        ],
    ),
    (
        2,
        "features: item_features, feature_failures, user_features",
        [
            """CREATE TABLE IF NOT EXISTS item_features (
                item_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, model_id VARCHAR NOT NULL,
                content_hash VARCHAR NOT NULL, dim INTEGER NOT NULL, vector FLOAT[] NOT NULL,
                created_at TIMESTAMP NOT NULL, PRIMARY KEY (item_id, modality))""",
            """CREATE TABLE IF NOT EXISTS feature_failures (
                item_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, model_id VARCHAR NOT NULL,
                content_hash VARCHAR NOT NULL, reason VARCHAR NOT NULL, failed_at TIMESTAMP NOT NULL,
                PRIMARY KEY (item_id, modality))""",
            """CREATE TABLE IF NOT EXISTS user_features (
                user_id VARCHAR NOT NULL, modality VARCHAR NOT NULL, model_id VARCHAR NOT NULL,
                content_hash VARCHAR NOT NULL, dim INTEGER NOT NULL, vector FLOAT[] NOT NULL,
                created_at TIMESTAMP NOT NULL, PRIMARY KEY (user_id, modality))""",
        ],
    ),
    (
        3,
        "llm_outputs cache",
        [
            """CREATE TABLE IF NOT EXISTS llm_outputs (
                backend VARCHAR NOT NULL, model VARCHAR NOT NULL, prompt_hash VARCHAR NOT NULL,
                role VARCHAR NOT NULL, subject_id VARCHAR NOT NULL, prompt VARCHAR NOT NULL,
                output VARCHAR, status VARCHAR NOT NULL, error VARCHAR, tokens INTEGER,
                created_at TIMESTAMP NOT NULL, PRIMARY KEY (backend, model, prompt_hash))""",
        ],
    ),
    (
        4,
        "pipeline state (fingerprints for skipping unchanged work)",
        [
            """CREATE TABLE IF NOT EXISTS pipeline_state (
                key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)""",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK that never hides the error being handled (after a failed write, e.g. a full disk, DuckDB may
    already have aborted the transaction and a plain ROLLBACK would raise its own, unrelated error)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def check_identifier(name: str) -> str:
    """Validate a SQL identifier that comes from config or a user; returns it unchanged or raises ValueError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}: use letters, digits and _, not starting with a digit")
    return name


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Create the schema or bring it up to date. Idempotent; returns the schema version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
        "applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()}
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for stmt in statements:
                con.execute(stmt)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [version, description])
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
    return SCHEMA_VERSION


def _open(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise RuntimeError(
                    f"warehouse {path} is locked by another process (a pipeline stage is writing); "
                    f"waited {timeout_s:.0f}s. Published results can be read meanwhile from the serving file."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(cfg: GenreConfig, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to the warehouse file, migrated on write. Waits for a lock up to the timeout."""
    path = warehouse_path(cfg)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist yet: run `genre ingest` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, cfg.warehouse.lock_timeout_s)
    try:
        if not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


def get_state(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM pipeline_state WHERE key = ?", [key]).fetchall()
    return row[0][0] if row else None


def set_state(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO pipeline_state (key, value, updated_at) VALUES (?, ?, current_timestamp)",
        [key, value],
    )
