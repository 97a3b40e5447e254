"""The RecBole atomic-file reader: typed headers, token_seq fields, field mapping, rejects, the real Beauty files."""
from __future__ import annotations

from pathlib import Path

import pytest

from genre_core.config import load_config
from genre_core.ingest.pipeline import run_ingest
from genre_core.ingest.raw import SourceError
from genre_core.ingest.recbole import parse_header, split_seq
from genre_core.sql import query
from tests.conftest import REPO, shared_dataset

INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "u1\ti1\t4.0\t1700000000.0\n"
         "u1\ti2\t5\t1700000100\n"
         "u2\ti1\t3\t1700000200\n"
         "u2\ti9\t3\t1700000300\n"          # unknown item -> unknown_item
         "u2\ti2\tgood\t1700000400\n"       # float field that is not a number -> value_type
         "u3\ti2\t4\n")                     # a missing field -> field_count
ITEM = ("item_id:token\ttitle:token\tcategories:token_seq\tbrand:token\tprice:float\ttags:float_seq\n"
        'i1\t"Soap\twith a tab"\tBath Body\tAcme\t2.5\t1 2\n'
        "i2\tShampoo\tHair\t\t\t\n")
USER = "user_id:token\tage:float\tgender:token\nu1\t31\tf\nu2\t40\tm\n"


def _world(root: Path, inter: str = INTER, user: bool = True) -> Path:
    d = root / "data" / "tiny"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny.inter").write_text(inter, encoding="utf-8")
    (d / "tiny.item").write_text(ITEM, encoding="utf-8")
    if user:
        (d / "tiny.user").write_text(USER, encoding="utf-8")
    return d


def _cfg(d: Path, *extra: str):
    return load_config(None, [f"data_dir={d.parent}", "dataset.name=tiny", "dataset.reader=recbole",
                              "dataset.path=tiny", "dataset.fetch=null", "dataset.tmdb_path=null",
                              "dataset.recbole={text_fields: [brand]}", "validation.max_reject_rate=0.6", *extra])


def test_parse_header_and_seq_tokens(tmp_path):
    p = tmp_path / "x.inter"
    p.write_text("user_id:token\tscore:float_seq\n")
    assert parse_header(p) == [("user_id", "token"), ("score", "float_seq")]
    p.write_text("user_id:token\titem_id\n")
    with pytest.raises(SourceError, match=r"x.inter: header column 2 'item_id' is not 'name:type'"):
        parse_header(p)
    p.write_text("user_id:token\titem_id:str\n")
    with pytest.raises(SourceError, match="unknown type 'str'"):
        parse_header(p)
    assert split_seq("a b  c", " ") == ["a", "b", "c"]
    assert split_seq("'Beauty', 'Creams, Gels & Lotions'", ",") == ["Beauty", "Creams, Gels & Lotions"]


def test_recbole_ingest_rejects_and_mapping(genre_home, tmp_path):
    cfg = _cfg(_world(tmp_path))
    s = run_ingest(cfg, progress=False)
    by = {b["entity"]: b for b in s["batches"]}
    for b in by.values():
        assert b["rows_in"] == b["rows_accepted"] + b["rows_rejected"]
    assert (by["items"]["rows_in"], by["items"]["rows_rejected"]) == (2, 0)
    assert (by["interactions"]["rows_in"], by["interactions"]["rows_accepted"]) == (6, 3)
    rules = dict(query(cfg, "SELECT rule, count(*) FROM rejects GROUP BY 1")[1])
    assert rules == {"unknown_item": 1, "value_type": 1, "field_count": 1}
    detail = query(cfg, "SELECT detail FROM rejects WHERE rule = 'value_type'")[1][0][0]
    assert "rating" in detail and "'good'" in detail
    rows = query(cfg, "SELECT item_id, title, category, text, attributes FROM items ORDER BY 1")[1]
    assert rows[0][:4] == ("i1", "Soap with a tab", "Bath|Body", "brand: Acme")  # cleaned whitespace
    assert '"price": "2.5"' in rows[0][4] and '"tags": "1|2"' in rows[0][4]
    assert rows[1][3] is None
    ix = query(cfg, "SELECT user_id, item_id, value, epoch(ts)::BIGINT FROM interactions ORDER BY 4")[1]
    assert ix[0] == ("u1", "i1", 4.0, 1700000000)
    assert query(cfg, "SELECT user_id, attributes FROM users ORDER BY 1")[1][0] == ("u1", '{"age": "31", "gender": "f"}')
    assert run_ingest(cfg, progress=False)["batches"][-1]["status"] == "unchanged"  # same file: nothing added


def test_recbole_missing_field_is_a_clear_error(genre_home, tmp_path):
    cfg = _cfg(_world(tmp_path, user=False), "dataset.recbole.user_field=reviewer")
    with pytest.raises(SourceError, match=r"tiny.inter: header fields .* lack required field\(s\) \['reviewer'\]"):
        run_ingest(cfg, progress=False)


@pytest.mark.slow
def test_amazon_beauty_counts(genre_home):
    root = shared_dataset("amazon-beauty")
    cfg = load_config(REPO / "conf" / "amazon-beauty.yaml", [f"data_dir={root.parent}"])
    s = run_ingest(cfg, progress=False)
    items, ix = s["batches"]
    assert (items["rows_in"], items["rows_accepted"]) == (12101, 12094)  # 7 items have neither title nor brand
    assert (ix["rows_in"], ix["rows_accepted"]) == (198502, 198502)
    assert s["totals"]["users"] == 22363
    assert query(cfg, "SELECT category FROM items WHERE item_id = '9759091062'")[1] == [
        ("Beauty|Hair Care|Styling Products|Creams, Gels & Lotions",)]


def test_recbole_defaults_need_no_section(genre_home, tmp_path):
    d = _world(tmp_path)
    cfg = load_config(None, [f"data_dir={d.parent}", "dataset.name=tiny", "dataset.reader=recbole", "dataset.path=tiny",
                             "dataset.fetch=null", "dataset.tmdb_path=null", "validation.max_reject_rate=0.6"])
    s = run_ingest(cfg, progress=False)
    assert [b["rows_accepted"] for b in s["batches"]] == [2, 2, 3]  # items, users, interactions
    assert query(cfg, "SELECT text FROM items WHERE item_id = 'i1'")[1] == [(None,)]  # no text_fields by default
