"""The warehouse table ``feedback``: one row per published run and cut-off k, upserted by (run_id, k).

Created here (``CREATE TABLE IF NOT EXISTS``) on the first feedback run, so the stage owns its table.
"""
from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR NOT NULL",  # recommendation_runs.run_id of the published lists
    "model_name": "VARCHAR",
    "model_version": "VARCHAR",  # registered model version that produced the lists
    "published_at": "TIMESTAMP",  # when the run was published (naive UTC)
    "window_start": "TIMESTAMP",  # event time of the earliest / latest interaction scored against it
    "window_end": "TIMESTAMP",
    "batches": "INTEGER",  # ingest batches attributed to the run
    "k": "INTEGER NOT NULL",
    "users_shown": "BIGINT",
    "users_active": "BIGINT",  # shown users with any new interaction
    "active_share": "DOUBLE",
    "users_evaluated": "BIGINT",  # shown users with a new positive on an item new to them
    "new_interactions": "BIGINT",
    "hits": "BIGINT",
    "hit_rate": "DOUBLE",
    "precision": "DOUBLE",
    "recall": "DOUBLE",
    "coverage": "DOUBLE",
    "novelty": "DOUBLE",  # mean self-information of the shown items, bits
    "catalogue_items": "BIGINT",
    "computed_at": "TIMESTAMP",
}


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS feedback ({cols}, PRIMARY KEY (run_id, k))")


def upsert(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write the rows whose inputs (batches, new_interactions) changed or that are new; returns those rows."""
    changed = []
    for r in rows:
        old = con.execute("SELECT batches, new_interactions FROM feedback WHERE run_id = ? AND k = ?",
                          [r["run_id"], r["k"]]).fetchall()
        if old and tuple(old[0]) == (r["batches"], r["new_interactions"]):
            continue
        con.execute("DELETE FROM feedback WHERE run_id = ? AND k = ?", [r["run_id"], r["k"]])
        names = list(COLUMNS)
        con.execute(f"INSERT INTO feedback ({', '.join(chr(34) + n + chr(34) for n in names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})", [r.get(n) for n in names])
        changed.append(r)
    return changed


def read_feedback(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The whole table, oldest published run first."""
    out = pl.from_arrow(con.sql("SELECT * FROM feedback ORDER BY published_at, run_id, k").to_arrow_table())
    if not isinstance(out, pl.DataFrame):
        raise TypeError("expected a table")
    return out
