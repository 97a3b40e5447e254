"""Point 1: `genre sql` runs exactly one read statement, with no file access outside the two databases, and
prints data literally; a long query never makes a writing stage fail on the warehouse lock."""
from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from genre_core.config import load_config
from genre_core.security.sqlguard import SQLRefused
from tests.security.shop import one_error_line

# (query, expected exit code, words the one-line error must contain); {wh} = the warehouse, {out} = a target file
ATTACKS = [
    ("DETACH wh", 2, "DETACH"),
    ("ATTACH '{wh}' AS w2", 2, "ATTACH"),
    ("COPY (SELECT * FROM items) TO '{out}'", 2, "COPY"),
    ("WITH x AS (SELECT 1) COPY x TO '{out}'", 2, "parse"),
    ("SELECT * FROM read_csv('/etc/passwd')", 1, "disabled"),
    ("SELECT * FROM '/etc/passwd'", 1, "/etc/passwd"),
    ("FROM read_blob('/etc/passwd')", 1, "disabled"),
    ("SELECT content FROM read_text('/etc/passwd')", 1, "disabled"),
    ("SELECT * FROM glob('/etc/*')", 1, "disabled"),
    ("SELECT * FROM read_parquet('{wh}')", 1, "disabled"),
    ("SELECT getenv('HOME')", 1, "getenv"),
    ("INSTALL httpfs", 2, "LOAD"),
    ("LOAD json", 2, "LOAD"),
    ("SET enable_external_access = true", 2, "SET"),
    ("RESET lock_configuration", 2, "SET"),
    ("PRAGMA version", 2, "PRAGMA"),
    ("CALL pragma_version()", 2, "CALL"),
    ("SELECT 1; DROP TABLE items", 2, "exactly one"),
    ("/* hidden */ DELETE FROM items -- comment", 2, "DELETE"),
    ("EXPLAIN ANALYZE INSERT INTO items (item_id) VALUES ('x')", 2, "EXPLAIN of INSERT"),
    ("EXPLAIN ANALYZE COPY items TO '{out}'", 2, "EXPLAIN"),
    ("CREATE TABLE z AS SELECT 1", 2, "CREATE"),
    ("EXPORT DATABASE '{out}'", 2, "EXPORT"),
    ("CHECKPOINT", 2, "refused"),
    ("USE wh", 2, "SET"),
    ("SELECT * FROM query('COPY items TO ''{out}''')", 1, "SELECT"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", 1, "disabled"),
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``genre ARGS`` through the CLI's entry point in this process (the code a ``genre`` process runs, minus the
    interpreter start): exit code, stdout and stderr as a CompletedProcess. An exception escaping ``main``
    would fail the test here just as a traceback fails ``one_error_line``."""
    from genre_core.cli import main

    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["genre", *args], code, out.out, out.err)


def _check_refused(proc: subprocess.CompletedProcess[str], q: str, code: int, words: str) -> None:
    assert proc.returncode == code, (q, proc.returncode, proc.stdout, proc.stderr)
    line = one_error_line(proc)
    assert line.startswith("genre sql: ") and words.lower() in line.lower(), (q, line)
    assert "root:" not in proc.stdout  # nothing of /etc/passwd was printed


# attacks also run as real `genre` processes: one per kind (a write, a file read, several statements, a setting)
IN_A_PROCESS = ("COPY (SELECT * FROM items) TO '{out}'", "SELECT * FROM read_csv('/etc/passwd')",
                "SELECT 1; DROP TABLE items", "SET enable_external_access = true")


def test_every_write_and_file_access_is_refused_through_the_cli(ingested, tmp_path: Path, monkeypatch,
                                                                capsys) -> None:
    shop, _ = ingested
    for k, v in shop.env().items():
        if k.startswith("GENRE_"):
            monkeypatch.setenv(k, v)
    wh = shop.home / "warehouse.duckdb"
    before = _digest(wh)
    out = tmp_path / "stolen.csv"
    for sql, code, words in ATTACKS:
        q = sql.format(wh=wh, out=out)
        _check_refused(_cli_in_process(["sql", "--config", str(shop.config), q], capsys), q, code, words)
    by_sql = {sql: (code, words) for sql, code, words in ATTACKS}
    for sql in IN_A_PROCESS:
        q = sql.format(wh=wh, out=out)
        _check_refused(shop.genre("sql", q, timeout=60), q, *by_sql[sql])
    assert not out.exists() and _digest(wh) == before
    proc = shop.genre("sql", "SELECT count(*) AS n FROM items", "--csv")
    assert proc.returncode == 0 and proc.stdout.splitlines() == ["n", "8"]


@pytest.mark.parametrize("sql", [
    "SELECT 1", "WITH a AS (SELECT 1 AS x) SELECT x FROM a", "EXPLAIN SELECT 1", "DESCRIBE SELECT 1",
    "SHOW TABLES", "SUMMARIZE SELECT 1 AS x", "FROM range(3)", "VALUES (1), (2)", "(SELECT 1)",
    "-- a comment\nSELECT 1;", "EXPLAIN ANALYZE SELECT 1",
])
def test_read_statements_pass_the_parser_gate(sql: str) -> None:
    from genre_core.security.sqlguard import check_read_only

    assert check_read_only(sql)


@pytest.mark.parametrize("sql", [
    "UPDATE items SET title = 'x'", "INSERT INTO items SELECT * FROM items", "DROP VIEW items", "ALTER TABLE a ADD b INT",
    "ATTACH ':memory:' AS m", "DETACH DATABASE wh", "MERGE INTO a USING b ON a.x=b.x WHEN MATCHED THEN DELETE",
    "PREPARE p AS SELECT 1", "EXECUTE p", "BEGIN TRANSACTION", "SET VARIABLE x = 1", "COPY FROM DATABASE wh TO m",
    "VACUUM", "ANALYZE", "EXPLAIN DELETE FROM items", "EXPLAIN (FORMAT json) UPDATE items SET title = ''", "",
    "SELECT 1; SELECT 2", "CREATE MACRO m() AS 1", "LOAD 'x.duckdb_extension'", "FORCE INSTALL x",
])
def test_everything_else_is_refused_before_any_file_is_opened(sql: str) -> None:
    from genre_core.security.sqlguard import check_read_only

    with pytest.raises(SQLRefused):
        check_read_only(sql)


def test_hardened_connection_cannot_be_reopened_even_past_the_gate(ingested, monkeypatch) -> None:
    """Defence in depth: with the parser gate bypassed, the locked DuckDB settings still refuse file access,
    and a re-ATTACH read-write can only ever reach the throw-away snapshot, never the warehouse."""
    from genre_core.security.sqlguard import snapshot_connection

    shop, _ = ingested
    monkeypatch.setenv("GENRE_HOME", str(shop.home))
    monkeypatch.setenv("GENRE_DATA_DIR", str(shop.data))
    cfg = load_config(shop.config)
    wh = shop.home / "warehouse.duckdb"
    before = _digest(wh)
    with snapshot_connection(cfg) as con:
        for sql in ("SET enable_external_access = true", "SET lock_configuration = false",
                    f"ATTACH '{wh}' AS direct", "SELECT * FROM read_csv('/etc/passwd')"):
            with pytest.raises(Exception, match="(?i)lock|disabled|permission"):
                con.execute(sql)
        snap = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'wh'").fetchall()[0][0]
        assert Path(snap) != wh and not Path(snap).is_relative_to(shop.home)
    assert _digest(wh) == before


def test_data_prints_literally_in_tables_and_csv(ingested) -> None:
    shop, _ = ingested
    proc = shop.genre("sql", "SELECT title FROM items WHERE item_id = 'sku0'")
    assert proc.returncode == 0, proc.stderr
    assert "[/b][bold red]Evil\\x1b[31m\\x07 red" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    proc = shop.genre("sql", "SELECT '=cmd|'' /C calc''!A0' AS a, '+1' AS b, '-x' AS c, '@SUM(1)' AS d, "
                             "'\tx' AS e, 'plain' AS f, -1.5 AS g, title FROM items WHERE item_id = 'sku0'", "--csv")
    assert proc.returncode == 0, proc.stderr
    import csv

    header, row = list(csv.reader(proc.stdout.splitlines()))
    assert row == ["'=cmd|' /C calc'!A0", "'+1", "'-x", "'@SUM(1)", "'\tx", "plain", "-1.5",
                   "[/b][bold red]Evil\\x1b[31m\\x07 red"]
    assert "\x1b" not in proc.stdout


def test_stage_summary_prints_literally(monkeypatch) -> None:
    from genre_core.report import print_summary
    import io
    import contextlib

    monkeypatch.setenv("COLUMNS", "200")
    buf = io.StringIO()
    summary = {"dataset": "[bold]x", "batches": [{"entity": "items", "status": "accepted", "rows_in": 1, "rows_accepted": 1,
               "rows_rejected": 0, "rows_added": 1, "source": "/d/evil[b]\x1b[2J.csv"}], "totals": {"[red]": 1}}
    with contextlib.redirect_stdout(buf):
        print_summary("ingest", summary)
        print_summary("features", {"text": "[/b]\x1b]0;title\x07"})
    out = buf.getvalue()
    assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\x07" not in out  # no data escape reaches the terminal
    unfolded = "".join(line.strip() for line in out.splitlines())  # 80-column tables fold long cells
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "evil[b]\\x1b[2J.csv" in unfolded and "[/b]\\x1b]0;title\\x07" in out and "[red]" in out and "[bold]x" in out


@pytest.mark.slow
def test_long_query_does_not_make_a_writing_stage_fail(ingested, tmp_path: Path) -> None:
    """A real second process: `genre sql` runs a long query on its snapshot while `genre ingest` writes."""
    shop, _ = ingested
    snaps = tmp_path / "tmp"
    snaps.mkdir()
    slow = "SELECT count(*) FROM range(200000) a, range(200000) b WHERE (a.range * b.range) % 7 = 3"
    reader = subprocess.Popen(shop.cmd("sql", "--config", str(shop.config), slow), cwd=shop.root, env=shop.env(TMPDIR=str(snaps)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(snaps.glob("genre-sql-*/wh.duckdb")) and time.monotonic() < deadline:
            assert reader.poll() is None, reader.communicate()
            time.sleep(0.2)
        time.sleep(1.0)  # the query is running on its snapshot now
        (shop.folder / "events.csv").write_text((shop.folder / "events.csv").read_text()
                                                + "cust001,sku7,2,2024-11-20 10:00:00,buy\n")
        writer = shop.genre("ingest", "--direct", "--set", "warehouse.lock_timeout_s=3")
        assert writer.returncode == 0, writer.stderr
        assert reader.poll() is None, "the reader finished too early to prove anything"
        assert "added" in writer.stdout
    finally:
        reader.kill()
        reader.communicate()


MORE_FILE_ACCESS = [
    "SELECT * FROM read_csv_auto('/etc/passwd')", "SELECT * FROM read_json_objects('/proc/self/environ')",
    "SELECT * FROM 'https://example.com/x.csv'", "FROM sqlite_scan('/tmp/x.db', 't')", "FROM iceberg_scan('/tmp')",
    "SUMMARIZE SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_parquet(['/etc/passwd'])",
    "SELECT * FROM parquet_scan('/etc/passwd')", "FROM delta_scan('/tmp')", "SELECT * FROM st_read('/etc/passwd')",
    "SELECT * FROM range(3) t(x) WHERE x IN (SELECT * FROM read_text('/etc/hostname'))",
    "SELECT * FROM duckdb_secrets()", "PIVOT items ON category USING count(*)",
]


def test_more_file_access_forms_are_refused(ingested, monkeypatch) -> None:
    """Cases beyond the issue's list: other readers, URLs, extension functions, file access in a subquery."""
    import duckdb

    from genre_core.sql import query

    shop, _ = ingested
    monkeypatch.setenv("GENRE_HOME", str(shop.home))
    monkeypatch.setenv("GENRE_DATA_DIR", str(shop.data))
    cfg = load_config(shop.config)
    for sql in MORE_FILE_ACCESS:
        with pytest.raises(duckdb.Error):
            query(cfg, sql)
    assert query(cfg, "UNPIVOT (SELECT item_id, title FROM items) ON title INTO NAME k VALUE v")[1]
