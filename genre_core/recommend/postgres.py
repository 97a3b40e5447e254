"""Publish a complete run to PostgreSQL (``warehouse.publish_to: postgres``): bulk COPY, atomic swap.

Tables (created on first publish, in the connection's ``search_path`` schema):

- ``recommendation_runs``: one row per published run (the DuckDB columns plus ``published_seq``, the
  publication order);
- ``recommendations_history`` / ``similar_items_history`` / ``explanations_history`` (LLM explanations, when the
  run has them): partitioned by ``run_id``, one partition per kept run;
- views ``recommendations``, ``similar_items`` and ``explanations`` (the latest published run) and
  ``recommendation_changes``
  (latest vs previous kept run), with the same columns as in the DuckDB serving file.

A publish (one publisher at a time: a session advisory lock):

1. drops staging tables left by a killed publish;
2. COPYs the rows into new staging tables (CSV through ``psycopg``'s COPY protocol, in chunks), adds the
   ``CHECK (run_id = ...)`` that makes attaching free and the per-partition indexes, and commits;
3. in ONE short transaction, attaches the staging tables as the run's partitions and inserts the run record.
   Until that commit, readers see the previous run; after it, the new one. Only ``ATTACH PARTITION`` locks are
   taken (SHARE UPDATE EXCLUSIVE on the parents), which never block readers. A kill at any point before the
   commit leaves the previous run intact;
4. drops the partitions of runs beyond ``keep_runs`` (a separate transaction with a lock timeout; what cannot be
   dropped now is dropped by the next publish).

Everything readers use is MVCC: a transaction sees one run from its first to its last statement, unless it
lives through ``keep_runs`` further publishes (its run's partition is then dropped under it).
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import polars as pl

from genre_core.recommend.publish import (
    EXPLANATION_INPUT_COLUMNS,
    REC_INPUT_COLUMNS,
    RUN_COLUMNS,
    SIMILAR_INPUT_COLUMNS,
    RunRecord,
    changes_view,
    check_frames,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

PASSWORD_ENV = "GENRE_PG_PASSWORD"
STAGE_PREFIX = "genre_stage_"
LOCK_KEY = 0x67656E7265  # "genre": the advisory lock that serialises publishers
COPY_CHUNK_ROWS = 500_000
PRUNE_LOCK_TIMEOUT_S = 2.0  # how long dropping old partitions may queue readers behind its lock

SCHEMA = [
    """CREATE TABLE recommendation_runs (
        run_id text PRIMARY KEY, model_name text, model_version text, model_run_id text, k integer,
        users bigint, rows bigint, cold_users bigint, started_at timestamp, finished_at timestamp, status text,
        published_seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE)""",
    """CREATE TABLE recommendations_history (
        user_id text NOT NULL, rank integer NOT NULL, item_id text NOT NULL, score real, because_item_id text,
        run_id text NOT NULL, model_name text, model_version text, generated_at timestamp NOT NULL
    ) PARTITION BY LIST (run_id)""",
    "CREATE INDEX recommendations_history_user ON recommendations_history (user_id, rank)",
    """CREATE TABLE similar_items_history (
        item_id text NOT NULL, rank integer NOT NULL, similar_item_id text NOT NULL, score real,
        run_id text NOT NULL
    ) PARTITION BY LIST (run_id)""",
    "CREATE INDEX similar_items_history_item ON similar_items_history (item_id, rank)",
    """CREATE VIEW latest_recommendation_run AS
        SELECT run_id FROM recommendation_runs WHERE status = 'complete' ORDER BY published_seq DESC LIMIT 1""",
    """CREATE VIEW recommendations AS
        SELECT user_id, rank, item_id, score, because_item_id, run_id, model_name, model_version, generated_at
        FROM recommendations_history WHERE run_id = (SELECT run_id FROM latest_recommendation_run)""",
    """CREATE VIEW similar_items AS
        SELECT item_id, rank, similar_item_id, score, run_id
        FROM similar_items_history WHERE run_id = (SELECT run_id FROM latest_recommendation_run)""",
    changes_view("""SELECT r.run_id, row_number() OVER (ORDER BY r.published_seq DESC) AS age
        FROM recommendation_runs r
        WHERE r.status = 'complete' AND EXISTS (SELECT 1 FROM recommendations_history h WHERE h.run_id = r.run_id)"""),
]
# LLM explanations (genre_core.llm.explain), one partition per kept run like the recommendations; created on the
# first publish that finds them missing (schemas published into before explanations existed get them then)
EXPLANATIONS_SCHEMA = [
    """CREATE TABLE explanations_history (
        user_id text NOT NULL, rank integer NOT NULL, item_id text NOT NULL, because_item_id text,
        explanation text NOT NULL, llm_backend text, llm_model text, run_id text NOT NULL, model_version text,
        generated_at timestamp NOT NULL
    ) PARTITION BY LIST (run_id)""",
    "CREATE INDEX explanations_history_user ON explanations_history (user_id, rank)",
    """CREATE VIEW explanations AS
        SELECT user_id, rank, item_id, because_item_id, explanation, llm_backend, llm_model, run_id, model_version,
               generated_at
        FROM explanations_history WHERE run_id = (SELECT run_id FROM latest_recommendation_run)""",
]
PARTITION_PREFIXES = ("recs_", "similar_", "expl_")  # partition name = prefix + _token(run_id)


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError("warehouse.publish_to=postgres needs psycopg: pip install 'psycopg[binary]' "
                           "(or the project's 'postgres' extra)") from exc
    return psycopg


def redact_url(url: str) -> str:
    """``url`` for logs and summaries: any password replaced by ``***``."""
    info = _psycopg().conninfo.conninfo_to_dict(url)
    if "password" in info:
        info["password"] = "***"
    return " ".join(f"{k}={v}" for k, v in info.items())


def connect_postgres(url: str | None, application_name: str = "genre") -> psycopg.Connection:
    """Open a connection to ``warehouse.postgres.url`` (a libpq URL or ``key=value`` string).

    The password comes from ``$GENRE_PG_PASSWORD`` (or libpq's own ``PGPASSWORD`` / ``~/.pgpass``), never from
    the URL: a URL that carries one is refused, so it cannot end up in a config file or a log.
    """
    psycopg = _psycopg()
    if not url:
        raise ValueError("warehouse.publish_to=postgres needs warehouse.postgres.url, e.g. "
                         "postgresql://genre@db.example.com:5432/genre (password in $GENRE_PG_PASSWORD)")
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"warehouse.postgres.url is not a valid libpq URL: {exc}") from None
    if "password" in info:
        raise ValueError(f"warehouse.postgres.url must not contain a password; put it in ${PASSWORD_ENV}")
    extra: dict[str, Any] = {"application_name": application_name}
    if os.environ.get(PASSWORD_ENV):
        extra["password"] = os.environ[PASSWORD_ENV]
    return psycopg.connect(url, **extra)


def _token(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


def _copy_frame(cur: psycopg.Cursor, table: str, frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    """COPY ``frame[columns]`` into ``table`` as CSV, ``COPY_CHUNK_ROWS`` rows per chunk of text."""
    from psycopg import sql  # noqa: PLC0415

    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    frame = frame.select(columns)
    with cur.copy(stmt) as copy:
        for start in range(0, frame.height, COPY_CHUNK_ROWS):
            copy.write(frame.slice(start, COPY_CHUNK_ROWS).write_csv(include_header=False).encode())


def _stage(cur: psycopg.Cursor, parent: str, name: str, final: str, run_id: str, frame: pl.DataFrame,
           columns: tuple[str, ...], defaults: dict[str, Any], index: tuple[str, ...]) -> None:
    """Create staging table ``name`` shaped like ``parent``, COPY ``frame`` in, constrain and index it
    (the index is named after ``final``, the partition's name once attached)."""
    from psycopg import sql  # noqa: PLC0415

    ident = sql.Identifier(name)
    cur.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(ident, sql.Identifier(parent)))
    for col, value in defaults.items():  # constant columns are filled by defaults, not sent per row
        cur.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
            ident, sql.Identifier(col), sql.Literal(value)))
    _copy_frame(cur, name, frame, columns)
    cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (run_id = {})").format(
        ident, sql.Identifier(f"{name}_run"), sql.Literal(run_id)))
    cur.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
        sql.Identifier(f"{final}_key"), ident, sql.SQL(", ").join(map(sql.Identifier, index))))


def _drop_stale_stages(cur: psycopg.Cursor) -> list[str]:
    """Drop staging tables (not attached partitions) left by publishes that were killed; returns their names."""
    from psycopg import sql  # noqa: PLC0415

    cur.execute(
        """SELECT c.relname FROM pg_class c
           WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relname LIKE %s
             AND c.relnamespace = to_regnamespace(current_schema())""",
        [STAGE_PREFIX.replace("_", r"\_") + "%"],
    )
    names = [r[0] for r in cur.fetchall()]
    for name in names:
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    return names


def _prune(conn: psycopg.Connection, keep_runs: int, lock_timeout_s: float) -> list[str]:
    """Drop the partitions of runs published before the newest ``keep_runs`` complete ones (their run records
    stay); returns the run ids whose partitions were dropped.

    Dropping a partition needs an ACCESS EXCLUSIVE lock on its parent. The parents are locked first, in a fixed
    order (readers lock parent then partitions, so a drop that locked the partition first could deadlock with
    them), with a short lock timeout: a long reader query delays the prune, not every other reader. On a timeout
    the prune gives up quietly; the next publish drops what is left.
    """
    from psycopg import sql  # noqa: PLC0415

    psycopg = _psycopg()
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{max(int(lock_timeout_s * 1000), 1)}ms")))
            cur.execute("LOCK TABLE recommendations_history, similar_items_history, explanations_history "
                        "IN ACCESS EXCLUSIVE MODE")
            cur.execute(
                """SELECT run_id FROM recommendation_runs WHERE published_seq < (
                       SELECT min(published_seq) FROM (SELECT published_seq FROM recommendation_runs
                       WHERE status = 'complete' ORDER BY published_seq DESC LIMIT %s) newest)
                   ORDER BY published_seq""",
                [keep_runs],
            )
            pruned = []
            for (run_id,) in cur.fetchall():
                names = [prefix + _token(run_id) for prefix in PARTITION_PREFIXES]
                cur.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) "
                            "AND relnamespace = to_regnamespace(current_schema())", [names])
                existing = [r[0] for r in cur.fetchall()]
                for name in existing:
                    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                if existing:
                    pruned.append(run_id)
        return pruned
    except psycopg.errors.LockNotAvailable:
        log.warning("could not prune old runs within %.1fs (readers hold locks); the next publish retries",
                    lock_timeout_s)
        return []


def publish_postgres(
    url: str | None,
    recs: pl.DataFrame,
    run: RunRecord,
    *,
    similar: pl.DataFrame | None = None,
    keep_runs: int = 3,
    lock_timeout_s: float = 60.0,
    before_commit: Callable[[], None] | None = None,
    explanations: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Publish ``recs`` (and ``similar``) as the latest complete run in PostgreSQL at ``url``.

    Args:
        recs: columns user_id, rank, item_id, score, because_item_id (one row per user and rank).
        run: the run record; its run_id, model_name, model_version and finished_at tag every row. A run id that
            is already published is refused.
        similar: optional columns item_id, rank, similar_item_id, score.
        keep_runs: complete runs whose rows are kept (this one included, >= 1); older partitions are dropped.
        lock_timeout_s: how long the publisher waits for the advisory lock and the prune for its locks (seconds).
        before_commit: called inside the swap transaction just before COMMIT (tests kill the process there).
        explanations: optional columns ``EXPLANATION_INPUT_COLUMNS`` (LLM explanations of this run), attached in
            the same swap transaction; the view ``explanations`` shows the latest run's.
    Returns ``{"rows", "similar_rows", "explanation_rows", "pruned_runs", "dropped_stale", "target"}``.
    """
    from psycopg import sql  # noqa: PLC0415

    check_frames(recs, similar, keep_runs, explanations)
    token = _token(run.run_id)
    rec_stage, sim_stage = f"{STAGE_PREFIX}recs_{token}", f"{STAGE_PREFIX}similar_{token}"
    expl_stage = f"{STAGE_PREFIX}expl_{token}"
    with connect_postgres(url, application_name="genre-publish") as conn:
        with conn.cursor() as cur:  # session lock: released when the connection ends, even on a kill
            cur.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{max(int(lock_timeout_s * 1000), 1)}ms")))
            cur.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            cur.execute("RESET lock_timeout")
        conn.commit()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT to_regclass('recommendation_runs') IS NULL")
            if cur.fetchone()[0]:  # first publish into this schema (DDL on a live schema would lock readers out)
                for stmt in SCHEMA:
                    cur.execute(stmt)
            cur.execute("SELECT to_regclass('explanations_history') IS NULL")
            if cur.fetchone()[0]:  # new objects only: readers of the existing tables are not blocked
                for stmt in EXPLANATIONS_SCHEMA:
                    cur.execute(stmt)
            stale = _drop_stale_stages(cur)
            cur.execute("SELECT 1 FROM recommendation_runs WHERE run_id = %s", [run.run_id])
            if cur.fetchone() is not None:
                raise ValueError(f"run {run.run_id!r} is already published in PostgreSQL")
        with conn.transaction(), conn.cursor() as cur:  # bulk load, invisible to readers (not attached yet)
            _stage(cur, "recommendations_history", rec_stage, f"recs_{token}", run.run_id, recs, REC_INPUT_COLUMNS,
                   {"run_id": run.run_id, "model_name": run.model_name, "model_version": run.model_version,
                    "generated_at": run.finished_at}, ("user_id", "rank"))
            if similar is not None:
                _stage(cur, "similar_items_history", sim_stage, f"similar_{token}", run.run_id, similar, SIMILAR_INPUT_COLUMNS,
                       {"run_id": run.run_id}, ("item_id", "rank"))
            if explanations is not None:
                _stage(cur, "explanations_history", expl_stage, f"expl_{token}", run.run_id, explanations,
                       EXPLANATION_INPUT_COLUMNS, {"run_id": run.run_id, "model_version": run.model_version,
                                                   "generated_at": run.finished_at}, ("user_id", "rank"))
        with conn.transaction(), conn.cursor() as cur:  # the swap: one short transaction
            for parent, stage, final, frame in (("recommendations_history", rec_stage, f"recs_{token}", recs),
                                                ("similar_items_history", sim_stage, f"similar_{token}", similar),
                                                ("explanations_history", expl_stage, f"expl_{token}", explanations)):
                if frame is None:
                    continue
                cur.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    sql.Identifier(parent), sql.Identifier(stage), sql.Literal(run.run_id)))
                cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(stage), sql.Identifier(final)))
            record = asdict(run)
            cur.execute(
                sql.SQL("INSERT INTO recommendation_runs ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, RUN_COLUMNS)),
                    sql.SQL(", ").join([sql.Placeholder()] * len(RUN_COLUMNS))),
                [record[c] for c in RUN_COLUMNS],
            )
            if before_commit is not None:
                before_commit()
        pruned = _prune(conn, keep_runs, min(lock_timeout_s, PRUNE_LOCK_TIMEOUT_S))
    return {"rows": recs.height, "similar_rows": 0 if similar is None else similar.height,
            "explanation_rows": 0 if explanations is None else explanations.height, "pruned_runs": pruned, "dropped_stale": stale, "target": redact_url(url or "")}
