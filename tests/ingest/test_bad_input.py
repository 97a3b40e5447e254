"""Bad input: each problem is a clear error or a reject with its reason; counts always add up."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from genre_core.config import load_config
from genre_core.ingest.pipeline import BatchRefused, run_ingest
from genre_core.ingest.raw import SourceError
from genre_core.paths import warehouse_path
from tests.conftest import REPO

GOOD = [b"1\t1\t5\t881250949\n", b"1\t2\t3\t881250950\n", b"2\t1\t4\t881250951\n", b"2\t3\t1\t881250952\n"]


def _dataset(tmp_path: Path, ml100k: Path, data: bytes) -> Path:
    root = tmp_path / "data" / "ml-bad"
    root.mkdir(parents=True)
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copy(ml100k / name, root / name)
    (root / "u.data").write_bytes(data)
    return root


def _cfg(root: Path, *extra: str):
    return load_config(REPO / "conf" / "movielens-100k.yaml",
                       [f"data_dir={root.parent}", f"dataset.path={root.name}", "dataset.tmdb_path=null",
                        "dataset.fetch_if_missing=false", *extra])


def _rejects(cfg) -> dict[int, tuple[str, str, str]]:
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        rows = con.execute("SELECT row_number, rule, detail, raw FROM rejects WHERE source LIKE '%u.data'").fetchall()
    finally:
        con.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_corrupted_lines_are_rejected_with_reasons_and_counts_add_up(genre_home, tmp_path, ml100k):
    bad = [
        b"3\t4\t5\n",                       # line 5: wrong column count
        b"3\t5\tfive\t881250953\n",          # line 6: non-numeric rating
        b"3\t6\t9\t881250954\n",             # line 7: out of range
        b"1\t1\t5\t881250949\n",             # line 8: duplicate of line 1
        b"3\t99999\t4\t881250955\n",         # line 9: unknown item
        b"3\t7\t4\t88125\xff\xfe0955\n",     # line 10: invalid UTF-8
        b"3\t8\t4\tnot-a-time\n",            # line 11: bad timestamp
        b"3\t9\t4\t4102444800\n",            # line 12: year 2100, in the future
        b"77777\t9\t4\t881250956\n",         # line 13: unknown user
    ]
    data = b"".join(GOOD + bad) + b"4\t10"  # line 14: truncated last line
    cfg = _cfg(_dataset(tmp_path, ml100k, data), "validation.max_reject_rate=0.8")
    summary = run_ingest(cfg, progress=False)
    ix = [b for b in summary["batches"] if b["entity"] == "interactions"][0]
    assert ix["rows_in"] == 14
    assert ix["rows_accepted"] == 4 and ix["rows_rejected"] == 10
    assert ix["rows_in"] == ix["rows_accepted"] + ix["rows_rejected"]
    rej = _rejects(cfg)
    expected = {5: "field_count", 6: "value_type", 7: "value_range", 8: "duplicate", 9: "unknown_item",
                10: "encoding", 11: "timestamp_parse", 12: "timestamp_range", 13: "unknown_user", 14: "truncated"}
    assert {k: v[0] for k, v in rej.items()} == expected
    assert "expected 4 fields" in rej[5][1]
    assert "'five' is not a number" in rej[6][1]
    assert "outside [1.0, 5.0]" in rej[7][1]
    assert "'99999' is not a known item" in rej[9][1]
    assert rej[6][2] == "3\t5\tfive\t881250953"  # the original raw row is kept
    assert summary["totals"]["interactions"] == 4


def test_batch_over_reject_threshold_is_refused_and_warehouse_unchanged(genre_home, tmp_path, ml100k):
    root = _dataset(tmp_path, ml100k, b"".join(GOOD))
    cfg = _cfg(root)
    run_ingest(cfg, progress=False)
    (root / "u.data").write_bytes(b"".join(GOOD) + b"5\t1\tx\t1\n5\t2\tx\t1\n5\t3\tx\t1\n")
    with pytest.raises(BatchRefused, match=r"3 of 7 rows rejected .*max_reject_rate"):
        run_ingest(cfg, progress=False)
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM interactions").fetchall()[0][0] == 4
        status = con.execute("SELECT status, rows_in, rows_accepted, rows_rejected FROM ingest_batches "
                             "WHERE entity = 'interactions' ORDER BY started_at").fetchall()
        assert status == [("accepted", 4, 4, 0), ("refused", 7, 4, 3)]
    finally:
        con.close()


def test_newer_file_adds_only_new_rows(genre_home, tmp_path, ml100k):
    root = _dataset(tmp_path, ml100k, b"".join(GOOD[:2]))
    cfg = _cfg(root)
    assert run_ingest(cfg, progress=False)["totals"]["interactions"] == 2
    (root / "u.data").write_bytes(b"".join(GOOD))
    s = run_ingest(cfg, progress=False)
    ix = [b for b in s["batches"] if b["entity"] == "interactions"][0]
    assert (ix["rows_in"], ix["rows_accepted"], ix["rows_added"]) == (4, 4, 2)
    assert s["totals"]["interactions"] == 4


def test_empty_file_is_a_clear_error(genre_home, tmp_path, ml100k):
    cfg = _cfg(_dataset(tmp_path, ml100k, b""))
    with pytest.raises(SourceError, match=r"u\.data: file is empty"):
        run_ingest(cfg, progress=False)


def test_missing_file_is_a_clear_error(genre_home, tmp_path, ml100k):
    root = _dataset(tmp_path, ml100k, b"".join(GOOD))
    (root / "u.user").unlink()
    (root / "u.item").unlink()
    with pytest.raises(SourceError, match=r"u\.item: file not found"):
        run_ingest(_cfg(root), progress=False)


def test_pseudonymized_user_ids_need_a_key_and_hide_raw_ids(genre_home, tmp_path, ml100k, monkeypatch):
    root = _dataset(tmp_path, ml100k, b"".join(GOOD))
    cfg = _cfg(root, "privacy.pseudonymize_user_ids=true")
    monkeypatch.delenv("GENRE_PSEUDONYM_KEY", raising=False)
    with pytest.raises(Exception, match="GENRE_PSEUDONYM_KEY"):
        run_ingest(cfg, progress=False)
    monkeypatch.setenv("GENRE_PSEUDONYM_KEY", "s3cret")
    s = run_ingest(cfg, progress=False)
    assert s["totals"]["interactions"] == 4
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        users = {r[0] for r in con.execute("SELECT DISTINCT user_id FROM interactions").fetchall()}
    finally:
        con.close()
    assert len(users) == 2 and not users & {"1", "2"} and all(len(u) == 16 for u in users)
