"""MIND and generic readers, raw parsing units, text cleaning, fetch with checksum verification."""
from __future__ import annotations

import functools
import http.server
import io
import threading
import zipfile
from pathlib import Path

import polars as pl
import pytest

from genre_core.config import load_config
from genre_core.ingest.clean import clean_text
from genre_core.ingest.fetch import ChecksumError, fetch_movielens_100k
from genre_core.ingest.pipeline import run_ingest
from genre_core.ingest.raw import read_delimited
from genre_core.sql import query
from tests.conftest import REPO, shared_dataset


def test_clean_text():
    assert clean_text("  <b>Caf\u0065\u0301</b>&amp; more\n\ttext ") == "Caf\u00e9 & more text"
    assert clean_text("   ") is None and clean_text(None) is None


def test_read_delimited_line_numbers_with_multiline_quotes(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('id,text\n1,"two\nlines"\n2,plain\n3\n')
    t = read_delimited(p, ["id", "text"], separator=",", has_header=True, quoting=True)
    assert t.records["_row"].to_list() == [2, 4]
    assert t.records["text"].to_list() == ["two\nlines", "plain"]
    assert t.rejects.select("row_number", "rule").rows() == [(5, "field_count")]


def test_mind_sample(genre_home):
    root = shared_dataset("mind-small-sample")
    cfg = load_config(REPO / "conf" / "mind.yaml", [f"data_dir={root.parent}"])
    s = run_ingest(cfg, progress=False)
    items, ix = s["batches"]
    assert items["rows_in"] == 2000 and items["rows_accepted"] == 2000
    assert ix["rows_in"] == ix["rows_accepted"] + ix["rows_rejected"]
    cols, rows = query(cfg, "SELECT event_type, is_history, count(*), count(ts) FROM interactions GROUP BY 1, 2 ORDER BY 1, 2")
    by = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    assert by[("click", True)][1] == 0  # history clicks carry no time
    assert all(n == n_ts for (et, hist), (n, n_ts) in by.items() if not hist)  # impressions are timed
    reasons = dict(query(cfg, "SELECT rule, count(*) FROM rejects GROUP BY 1")[1])
    assert set(reasons) <= {"unknown_item"}  # the sample's news covers ~4% of referenced ids
    assert query(cfg, "SELECT category FROM items WHERE item_id = 'N16278'")[1] == [("sports|more_sports",)]


def test_generic_csv_reader(genre_home, tmp_path):
    d = tmp_path / "data" / "shop"
    d.mkdir(parents=True)
    (d / "products.csv").write_text("sku;name;description\nA;Apple;Red <i>fruit</i>\nB;Bread;Baked\n", encoding="latin-1")
    (d / "events.csv").write_text("customer;sku;qty;time\nu1;A;2;2024-01-02 10:00:00\nu1;B;1;2024-01-03 11:00:00\n"
                                  "u2;A;x;2024-01-02 10:00:00\nu2;C;1;2024-01-02 10:00:00\n", encoding="latin-1")
    cfg = load_config(REPO / "conf" / "examples" / "generic-csv.yaml", [
        f"data_dir={d.parent}", "dataset.path=shop", "dataset.generic.separator=;", "dataset.generic.encoding=latin-1",
        "dataset.generic.columns={user_id: customer, item_id: sku, value: qty, ts: time}",
        "dataset.generic.item_columns={item_id: sku, title: name, text: description}",
        "validation.max_reject_rate=0.5"])
    s = run_ingest(cfg, progress=False)
    ix = s["batches"][-1]
    assert (ix["rows_in"], ix["rows_accepted"], ix["rows_rejected"]) == (4, 2, 2)
    assert query(cfg, "SELECT text FROM items WHERE item_id = 'A'")[1] == [("Red fruit",)]
    assert query(cfg, "SELECT count(*) FROM users")[1] == [(1,)]  # users created from accepted interactions


def test_generic_parquet_reader(genre_home, tmp_path):
    d = tmp_path / "data" / "pq"
    d.mkdir(parents=True)
    pl.DataFrame({"user_id": ["a", "b"], "item_id": ["i1", "i2"], "rating": [4, 5], "timestamp": [1700000000, 1700000100]}
                 ).write_parquet(d / "events.parquet")
    cfg = load_config(None, [f"data_dir={d.parent}", "dataset.reader=generic", "dataset.path=pq",
                             "dataset.generic={interactions: events.parquet, format: parquet}"])
    assert run_ingest(cfg, progress=False)["totals"]["interactions"] == 2


def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _zip(ml100k: Path, tamper: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("u.data", "u.item", "u.user", "u.genre"):
            data = (ml100k / name).read_bytes()
            zf.writestr(f"ml-100k/{name}", data + (b"1\t1\t1\t1\n" if tamper and name == "u.data" else b""))
    return buf.getvalue()


@pytest.mark.parametrize("tamper", [False, True])
def test_fetch_verifies_checksums(tmp_path, ml100k, tamper):
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    (srv_dir / "ml-100k.zip").write_bytes(_zip(ml100k, tamper))
    srv = _serve(srv_dir)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/ml-100k.zip"
        if tamper:
            with pytest.raises(ChecksumError, match="u.data: sha256 .* does not match"):
                fetch_movielens_100k(tmp_path / "datasets", url=url)
            assert not (tmp_path / "datasets" / "ml-100k").exists()
        else:
            out = fetch_movielens_100k(tmp_path / "datasets", url=url)
            assert (out / "u.data").read_bytes() == (ml100k / "u.data").read_bytes()
            assert fetch_movielens_100k(tmp_path / "datasets", url="http://127.0.0.1:9/unreachable") == out  # cached
    finally:
        srv.shutdown()
