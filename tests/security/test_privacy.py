"""Point 2: with privacy.pseudonymize_user_ids on, no raw user id in any table (rejects included), output,
log, MLflow run or artifact; a change of privacy settings on an existing warehouse is refused."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.security.shop import events, make_shop, one_error_line

KEY = {"GENRE_PSEUDONYM_KEY": "k3y-for-tests"}


def _all_text(shop, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Every row of every table of the warehouse and the serving file, as text (the `genre sql` path)."""
    from genre_core.config import load_config
    from genre_core.sql import query

    for k in ("GENRE_HOME", "GENRE_DATA_DIR", "GENRE_PSEUDONYM_KEY"):
        monkeypatch.setenv(k, env[k])
    cfg = load_config(shop.config)
    _, names = query(cfg, "SELECT table_name FROM duckdb_tables() WHERE database_name IN ('wh', 'serving')")
    out = []
    for (name,) in names:
        cols, rows = query(cfg, f'SELECT * FROM "{name}"')
        out.append(repr((name, cols, rows)))
    return "\n".join(out)


@pytest.mark.slow
def test_no_raw_user_id_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = ("cust005,sku1,not-a-number,2024-11-09 10:00:00,buy\n"  # typed reject: value
           "cust004,sku2\n"  # parse-level reject: wrong field count
           "cust003,sku404,1,2024-11-09 10:00:00,buy\n")  # unknown item
    shop = make_shop(tmp_path, events_text=events() + bad,
                     extra={"privacy": {"pseudonymize_user_ids": True}, "validation": {"max_reject_rate": 0.5}})
    env = shop.env(**KEY)
    ingest = shop.genre("ingest", "--direct", env=env)
    assert ingest.returncode == 0, ingest.stderr
    train = shop.genre("train", "--direct", "--json", env=env)
    assert train.returncode == 0, train.stderr
    rec = shop.genre("recommend", "--direct", "--json", env=env)
    assert rec.returncode == 0, rec.stderr
    text = _all_text(shop, env, monkeypatch)
    assert "not-a-number" in text and "sku404" in text  # the rejected rows are there ...
    assert "cust00" not in text  # ... but not one raw user id, in any table (rejects.raw/detail included)
    for proc in (ingest, train, rec):
        assert "cust00" not in proc.stdout + proc.stderr
    leaks = [p for p in shop.home.rglob("*") if p.is_file() and b"cust00" in p.read_bytes()]
    assert leaks == []  # MLflow store, artifacts, logs, warehouse and serving files


@pytest.mark.slow
def test_turning_pseudonymisation_on_later_is_refused(ingested) -> None:
    shop, _ = ingested  # ingested without pseudonymisation
    proc = shop.genre("ingest", "--direct", "--set", "privacy.pseudonymize_user_ids=true", env=shop.env(**KEY))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "privacy settings changed" in line and "without pseudonymisation" in line and "warehouse.path" in line
    assert KEY["GENRE_PSEUDONYM_KEY"] not in proc.stderr  # the key itself is never shown, only a fingerprint
