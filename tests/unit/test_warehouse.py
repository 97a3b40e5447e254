from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from genre_core.config import load_config
from genre_core.warehouse import SCHEMA_VERSION, check_identifier, connect, migrate
from tests.conftest import REPO


def test_migrations_are_idempotent(genre_home):
    cfg = load_config(None)
    with connect(cfg) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {"items", "users", "interactions", "ingest_batches", "rejects", "item_features", "llm_outputs"} <= tables
        assert migrate(con) == SCHEMA_VERSION
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert (genre_home / "warehouse.duckdb").is_file()


def test_identifier_validation():
    assert check_identifier("item_features") == "item_features"
    for bad in ("1abc", "a;drop table x", "", "a b", 'x"'):
        with pytest.raises(ValueError, match="invalid SQL identifier"):
            check_identifier(bad)


def test_read_only_connection_to_missing_warehouse_is_clear(genre_home):
    with pytest.raises(FileNotFoundError, match="run `genre ingest` first"), connect(load_config(None), read_only=True):
        pass


def test_genre_core_does_not_import_prefect():
    code = "import sys, genre_core, genre_core.cli, genre_core.config, genre_core.warehouse, genre_core.ingest.pipeline; " \
           "print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_sql_is_read_only(genre_home):
    from genre_core.sql import query

    cfg = load_config(None)
    with connect(cfg):
        pass
    with pytest.raises(duckdb.Error):
        query(cfg, "INSERT INTO items (item_id) VALUES ('x')")
    assert query(cfg, "SELECT count(*) FROM items WHERE item_id = ?", ["x"])[1] == [(0,)]
