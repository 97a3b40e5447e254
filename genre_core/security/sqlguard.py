"""Read-only SQL for ``genre sql``: one read statement, run on a private snapshot with file access off.

Three layers, each enough on its own for the cases it covers:

1. The statement is parsed by DuckDB itself (``extract_statements``): exactly one statement, of type SELECT
   (which is also what DESCRIBE / SHOW / SUMMARIZE / FROM-first / VALUES parse to) or EXPLAIN [ANALYZE] of
   such a statement. COPY, ATTACH, DETACH, INSTALL/LOAD, SET, PRAGMA, CALL, EXPORT and every write are refused
   before anything is opened.
2. The query runs on an in-memory database with *copies* of the warehouse and the serving file attached
   READ_ONLY (a snapshot taken under a read lock held only for the copy, so a long query never holds the
   warehouse lock and a running stage never fails on it; anything the query could change is a throw-away copy).
3. After attaching: ``enable_external_access=false`` (no file, URL or extension access: read_csv, read_text,
   read_blob, glob, COPY TO, ATTACH of any other file), extension auto-install/auto-load and community
   extensions off, then ``lock_configuration=true`` so no query can turn any of it back on.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from genre_core.config import GenreConfig
from genre_core.paths import serving_path, warehouse_path

ALLOWED = "SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE"
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^)]*\)\s*)?(?P<inner>.*)$", re.I | re.S)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
HARDENING = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET enable_external_access = false",
    "SET lock_configuration = true",  # last: nothing above can be changed back by the query
)


class SQLRefused(duckdb.PermissionException):
    """A statement that ``genre sql`` does not run (not exactly one read statement)."""


def _statements(sql: str) -> list[duckdb.Statement]:
    con = duckdb.connect(":memory:")
    try:
        return con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SQLRefused(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def check_read_only(sql: str) -> str:
    """Return the single read statement of ``sql`` (parsed by DuckDB) or raise SQLRefused saying why."""
    stmts = _statements(sql)
    if len(stmts) != 1:
        raise SQLRefused(f"exactly one statement is allowed, got {len(stmts)}")
    stmt = stmts[0]
    kind = stmt.type
    if kind == duckdb.StatementType.EXPLAIN:
        m = _EXPLAIN.match(_COMMENTS.sub(" ", stmt.query).strip().rstrip(";"))
        if not m or not m.group("inner").strip():
            raise SQLRefused("EXPLAIN is allowed only in front of a read statement")
        inner = _statements(m.group("inner"))
        if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
            got = inner[0].type.name if len(inner) == 1 else f"{len(inner)} statements"
            raise SQLRefused(f"EXPLAIN of {got} is refused: only read statements ({ALLOWED}) may run")
    elif kind != duckdb.StatementType.SELECT:
        raise SQLRefused(f"{kind.name} statements are refused: only one read statement ({ALLOWED}) may run")
    return stmt.query


def _copy_warehouse(path: Path, dest: Path, timeout_s: float) -> bool:
    """Copy the warehouse (and its WAL) while holding a read lock. False when a stage holds it past timeout."""
    from genre_core.warehouse import _open  # noqa: PLC0415 - the same lock wait as every reader

    try:
        con = _open(path, read_only=True, timeout_s=timeout_s)
    except RuntimeError:
        return False
    try:
        shutil.copyfile(path, dest)
        wal = Path(f"{path}.wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{dest}.wal"))
    finally:
        con.close()
    return True


@contextmanager
def snapshot_connection(cfg: GenreConfig, notes: list[str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory, configuration-locked connection over snapshots of the warehouse (``wh``) and the
    serving file (``serving``), their tables exposed as views (serving wins on a name clash).

    ``notes`` receives human-readable remarks (e.g. warehouse busy: only published tables). Raises
    FileNotFoundError when neither file exists. The snapshots are deleted on exit.
    """
    from genre_core.warehouse import check_identifier  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="genre-sql-") as tmp:
        con = duckdb.connect(":memory:")
        try:
            attached = []
            wh, sv = warehouse_path(cfg), serving_path(cfg)
            if wh.exists():
                if _copy_warehouse(wh, Path(tmp) / "wh.duckdb", cfg.warehouse.lock_timeout_s):
                    con.execute("ATTACH ? AS wh (READ_ONLY)", [str(Path(tmp) / "wh.duckdb")])
                    attached.append("wh")
                elif notes is not None:
                    notes.append(f"warehouse {wh} is being written by a pipeline stage; only published tables "
                                 "are available right now")
            if sv.exists():
                shutil.copyfile(sv, Path(tmp) / "serving.duckdb")  # replaced atomically by publish: a whole file
                con.execute("ATTACH ? AS serving (READ_ONLY)", [str(Path(tmp) / "serving.duckdb")])
                attached.append("serving")
            if not attached and not wh.exists():
                raise FileNotFoundError(f"no warehouse at {wh}: run `genre ingest` first")
            views: dict[str, str] = {}
            for alias in attached:
                rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? UNION "
                                   "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
                                   [alias, alias]).fetchall()
                for (name,) in rows:
                    views[check_identifier(name)] = alias
            for name, alias in views.items():
                con.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM {alias}.main."{name}"')
            for stmt in HARDENING:
                con.execute(stmt)
            yield con
        finally:
            con.close()
