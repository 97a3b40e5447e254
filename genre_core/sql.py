"""``genre sql``: read-only SQL over the warehouse and the published serving file, printed as a table or CSV.

The query runs on an in-memory DuckDB that ATTACHes both files READ_ONLY and exposes their tables as views,
so one query can join interactions with recommendations. Nothing can be written.
"""
from __future__ import annotations

import csv
import sys
from typing import Any

import duckdb

from genre_core.config import GenreConfig
from genre_core.paths import serving_path, warehouse_path
from genre_core.warehouse import check_identifier


def open_readonly(cfg: GenreConfig) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``wh`` (warehouse) and ``serving`` attached read-only, tables as views.

    Serving tables win over warehouse tables of the same name. Raises FileNotFoundError when neither exists.
    """
    con = duckdb.connect(":memory:")
    attached = []
    for alias, path in (("wh", warehouse_path(cfg)), ("serving", serving_path(cfg))):
        if path.exists():
            try:
                con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [str(path)])
            except duckdb.IOException as exc:
                if alias == "wh" and "lock" in str(exc).lower():
                    print(f"genre sql: warehouse {path} is being written by a pipeline stage; only published "
                          "tables are available right now", file=sys.stderr)
                    continue
                raise
            attached.append(alias)
    if not attached:
        raise FileNotFoundError(f"no warehouse at {warehouse_path(cfg)}: run `genre ingest` first")
    views: dict[str, str] = {}
    for alias in attached:
        rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? UNION "
                           "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
                           [alias, alias]).fetchall()
        for (name,) in rows:
            views[check_identifier(name)] = alias
    for name, alias in views.items():
        con.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM {alias}.main."{name}"')
    return con


def query(cfg: GenreConfig, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
    """Run one read-only query; returns (column names, rows)."""
    con = open_readonly(cfg)
    try:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
    finally:
        con.close()


def run_sql(cfg: GenreConfig, sql: str, as_csv: bool = False) -> int:
    """Print the result of ``sql`` as a rich table, or CSV with ``as_csv=True``. Returns an exit code."""
    try:
        cols, rows = query(cfg, sql)
    except duckdb.Error as exc:
        print(f"genre sql: {exc}", file=sys.stderr)
        return 1
    if as_csv:
        _write_csv(cols, rows)
    else:
        from rich.console import Console  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415

        table = Table(*cols)
        for r in rows:
            table.add_row(*["" if v is None else str(v) for v in r])
        Console().print(table)
        print(f"({len(rows)} rows)")
    return 0


def _write_csv(cols: list[str], rows: list[tuple]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(cols)
    w.writerows(rows)
