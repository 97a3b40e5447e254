"""Point 7: every bad input of the issue gives one `genre ...` line (exit 2 for config, 1 otherwise), never a
traceback, and nothing is lost: previous results stay intact after a full disk or a permission error."""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.security.shop import HEADER_ITEMS, REPO, Shop, copy_shop, events, items, make_shop, one_error_line


def _count(shop, table: str = "interactions") -> int:
    proc = shop.genre("sql", f"SELECT count(*) FROM {table}", "--csv")
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.splitlines()[1])


@pytest.mark.slow
def test_bom_huge_field_truncated_line_and_bad_json_are_row_rejects(tmp_path: Path) -> None:
    huge = "x" * 200_000  # over csv.field_size_limit() (131072)
    text = ("\ufeff" + events() + f'cust001,sku1,"{huge}",2024-11-09 10:00:00,buy\n'
            + "cust002,sku2,3,2024-11-09 10:00:00,bu")  # cut mid-field, no final newline, still 5 fields
    bad_json = 'sku8,Broken,desc,dept0,,"{""colour"": ""red"",}"'
    shop = make_shop(tmp_path, events_text=text,
                     extra={"dataset": {"generic": {"item_columns": {"item_id": "sku", "title": "name",
                                                                     "attributes": "extra"}}}})
    (shop.folder / "products.csv").write_text(items() + bad_json + "\n", encoding="utf-8")
    proc = shop.genre("ingest", "--direct")
    assert proc.returncode == 0, proc.stderr
    assert _count(shop) == 24 and _count(shop, "items") == 8  # every good row, the BOM did not hide the header
    out = shop.genre("sql", "SELECT rule, row_number, left(detail, 60) FROM rejects ORDER BY rule", "--csv")
    rules = [line.split(",")[0] for line in out.stdout.splitlines()[1:]]
    assert rules == ["attributes_json", "field_too_large", "truncated"], out.stdout


@pytest.mark.parametrize("override,words", [
    ("dataset.generic.encoding=klingon-8", ["dataset.generic.encoding", "unknown text encoding"]),
    ("tracking.champion_metric=ndgc@10", ["tracking.champion_metric", "ndgc@10", "not a metric"]),
    ("tracking.champion_metric=ndcg@15", ["tracking.champion_metric", "K in [10, 20]"]),
    ("train.models=[bpr]", ["train.register_model", "is not trained"]),
])
def test_config_mistakes_fail_at_load(tmp_path: Path, override: str, words: list[str]) -> None:
    shop = make_shop(tmp_path)
    proc = shop.genre("train", "--direct", "--set", override, timeout=60)  # at load: before any training
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert all(w in line for w in words), line


def test_non_utf8_yaml_is_named(tmp_path: Path) -> None:
    shop = make_shop(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("dataset:\n  name: caf\xe9\n".encode("latin-1"))
    proc = shop.genre("config", "--config", str(bad), timeout=60)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert str(bad) in line and "not UTF-8" in line


def test_nested_parquet_column_is_named(tmp_path: Path) -> None:
    shop = make_shop(tmp_path, extra={"dataset": {"generic": {"format": "parquet", "interactions": "events.parquet",
                                                              "items": None}}})
    pl.DataFrame({"customer": [{"id": "c1", "tier": "gold"}], "sku": ["sku1"], "qty": [1],
                  "time": ["2024-11-01 10:00:00"], "kind": ["buy"]}).write_parquet(shop.folder / "events.parquet")
    proc = shop.genre("ingest", "--direct", timeout=120)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "events.parquet" in line and "customer" in line and "nested" in line


@pytest.mark.slow
def test_recommend_before_any_train(ingested) -> None:
    shop, _ = ingested
    proc = shop.genre("recommend", "--direct")
    assert proc.returncode == 1
    assert "run `genre train` first" in one_error_line(proc)


def _copy_of(ingested, tmp: Path, home: Path | None = None) -> Shop:
    """A private copy of the module's ingested shop: the previous night's results, without an ingest per test."""
    return copy_shop(ingested[0], tmp / "copy", home=home)


def _grow(shop) -> None:
    (shop.folder / "events.csv").write_text(events(600, 8), encoding="utf-8")


@pytest.mark.slow
def test_disk_full_on_a_real_small_tmpfs_keeps_previous_results(ingested, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); "
                    "test_disk_full_by_file_size_limit covers a full disk")
    try:
        shop = _copy_of(ingested, tmp_path, home=mnt / "home")
        with open(mnt / "filler", "wb") as fh:  # fill the file system to the last block
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        _grow(shop)
        proc = shop.genre("ingest", "--direct")
        assert proc.returncode == 1
        line = one_error_line(proc)
        assert ("disk is full" in line or "No space left" in line) and "previous results are unchanged" in line
        (mnt / "filler").unlink()
        assert _count(shop) == 24  # the warehouse still opens and holds the previous night's data
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_disk_full_by_file_size_limit_keeps_previous_results(ingested, tmp_path: Path) -> None:
    """RLIMIT_FSIZE in the child (SIGXFSZ ignored): every write past 8 KiB fails with EFBIG, on any machine."""
    shop = _copy_of(ingested, tmp_path)
    _grow(shop)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    proc = shop.genre("ingest", "--direct", preexec_fn=limit)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "File too large" in line and "previous results are unchanged" in line
    assert _count(shop) == 24


@pytest.mark.slow
def test_permission_denied_under_genre_home_keeps_previous_results(ingested, tmp_path: Path) -> None:
    shop = _copy_of(ingested, tmp_path)
    _grow(shop)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root ignores file modes: drop the override capabilities for the child
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot take away the permission override")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]
    for p in [shop.home, *shop.home.iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        proc = subprocess.run(prefix + shop.cmd("ingest", "--config", str(shop.config), "--direct"), cwd=REPO,
                              env=shop.env(), capture_output=True, text=True, timeout=240)
    finally:
        for p in [shop.home, *shop.home.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "ermission denied" in line and str(shop.home) in line and "previous results are unchanged" in line
    assert _count(shop) == 24
