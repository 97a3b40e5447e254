"""``genre sql``: one read-only SQL statement over the warehouse and the published serving file.

The statement is checked and run by ``genre_core.security.sqlguard`` (one read statement, parsed by DuckDB;
snapshots attached READ_ONLY; external access off and the configuration locked), so one query can join
interactions with recommendations and nothing can be written or read outside the two databases. Values are
printed literally: no rich markup, control characters escaped; ``--csv`` defuses spreadsheet formulas.
"""
from __future__ import annotations

import csv
import sys
from typing import Any

import duckdb

from genre_core.config import GenreConfig
from genre_core.security.literal import cell, csv_cell, escape_controls, rich_text
from genre_core.security.sqlguard import SQLRefused, check_read_only, snapshot_connection


def open_readonly(cfg: GenreConfig):  # noqa: ANN201 - context manager over a DuckDB connection
    """The hardened snapshot connection (see ``sqlguard.snapshot_connection``); use as a context manager."""
    return snapshot_connection(cfg)


def query(cfg: GenreConfig, sql: str, params: list[Any] | None = None,
          notes: list[str] | None = None) -> tuple[list[str], list[tuple]]:
    """Run one read statement; returns (column names, rows). Raises SQLRefused for anything else."""
    stmt = check_read_only(sql)
    with snapshot_connection(cfg, notes) as con:
        cur = con.execute(stmt, params or [])
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()


def run_sql(cfg: GenreConfig, sql: str, as_csv: bool = False) -> int:
    """Print the result of ``sql`` as a table, or CSV with ``as_csv=True``. Returns an exit code
    (0 ok, 2 refused statement, 1 query error), errors as one ``genre sql: ...`` line on stderr."""
    notes: list[str] = []
    try:
        cols, rows = query(cfg, sql, notes=notes)
    except SQLRefused as exc:
        print(f"genre sql: refused: {escape_controls(str(exc))}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"genre sql: {escape_controls(first)}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"genre sql: {note}", file=sys.stderr)
    if as_csv:
        _write_csv(cols, rows)
        return 0
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table()
    for c in cols:
        table.add_column(rich_text(c))
    for r in rows:
        table.add_row(*[rich_text(v) for v in r])
    Console(highlight=False).print(table)
    print(f"({len(rows)} rows)")
    return 0


def _write_csv(cols: list[str], rows: list[tuple]) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow([csv_cell(c) for c in cols])
    w.writerows([csv_cell(v) for v in r] for r in rows)


__all__ = ["query", "run_sql", "open_readonly", "cell"]
