"""Point 5: one writing run per GENRE_HOME (real second processes), a Prefect concurrency limit on every
deployment, champion promotion that cannot be raced, and an LLM budget shared by concurrent runs."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genre_core.locking import holder
from tests.security.shop import REPO, make_shop, one_error_line


def _wait_for_holder(lock: Path, pid: int, proc: subprocess.Popen, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = holder(lock) if lock.exists() else None
        if info and info.get("pid") == pid:
            return info
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the first run never took the lock")


@pytest.mark.slow
def test_second_writing_run_refuses_or_waits_naming_the_first(tmp_path: Path) -> None:
    shop = make_shop(tmp_path)
    first = subprocess.Popen(shop.cmd("ingest", "--config", str(shop.config), "--direct"), cwd=shop.root,
                             env=shop.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_for_holder(shop.home / "pipeline.lock", first.pid, first)
        assert info["stage"] == "ingest" and info["since"]
        refused = shop.genre("train", "--direct")  # execution.lock_wait_s = 0: refuse at once
        assert refused.returncode == 1
        line = one_error_line(refused)
        assert f"pid {first.pid}" in line and "stage ingest" in line and "since" in line
        assert first.poll() is None  # refused while the first was still running
        waiter = shop.genre("ingest", "--direct", "--json", "--set", "execution.lock_wait_s=300", timeout=400)
        assert first.wait(timeout=300) == 0
        assert waiter.returncode == 0, waiter.stderr
        assert {b["status"] for b in json.loads(waiter.stdout)["batches"]} == {"unchanged"}  # ran after, not during
    finally:
        first.kill()
        first.communicate()
    assert holder(shop.home / "pipeline.lock") is None  # released: the file is emptied


def test_a_crashed_holder_does_not_block_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flock is released by the kernel when the holder dies, even by SIGKILL."""
    shop = make_shop(tmp_path)
    code = ("import time; from genre_core.locking import pipeline_lock\n"
            "with pipeline_lock('nightly'):\n    print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=shop.env(), cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    busy = shop.genre("ingest", "--direct")
    assert busy.returncode == 1 and "stage nightly" in one_error_line(busy)
    proc.kill()
    proc.wait()
    from genre_core.locking import pipeline_lock

    monkeypatch.setenv("GENRE_HOME", str(shop.home))
    with pipeline_lock("check", 5):  # taken at once: the dead holder's lock is gone
        pass


def test_every_deployment_has_a_concurrency_limit() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    assert {d["name"]: d.get("concurrency_limit") for d in spec["deployments"]} == {
        d["name"]: 1 for d in spec["deployments"]}


@pytest.mark.slow
def test_two_concurrent_trains_register_in_turn_and_champion_is_consistent(ingested) -> None:
    shop, _ = ingested
    runs = [subprocess.Popen(shop.cmd("train", "--config", str(shop.config), "--direct", "--json", "--set",
                                      "execution.lock_wait_s=300", "--set", "train.skip_unchanged=false"),
                             cwd=shop.root, env=shop.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outs = [p.communicate(timeout=400) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [o[1][-2000:] for o in outs]
    regs = [json.loads(o[0])["registered"] for o in outs]
    assert sorted(int(r["version"]) for r in regs) == [1, 2]
    first, second = sorted(regs, key=lambda r: int(r["version"]))
    assert first["champion"] and first["reason"].startswith("first champion")
    assert second["reason"].startswith(("kept v1", "promoted"))  # decided against v1, not against nothing


def test_llm_budget_holds_across_concurrent_processes(tmp_path: Path) -> None:
    """Three real processes admit generations at the same time from one llm.max_calls=10: 10 in total."""
    ledger, go, done = tmp_path / "llm_budget.json", tmp_path / "go", tmp_path / "done"
    code = ("import sys, time; from pathlib import Path\n"
            "from genre_core.llm.shared_budget import SharedBudget\n"
            "b = SharedBudget(10, 10**9, ledger=Path(sys.argv[1])); got = 0\n"
            "print('ready', flush=True)\n"
            "while not Path(sys.argv[2]).exists(): time.sleep(0.01)\n"
            "for _ in range(10):\n    n = b.admit([1]); b.spend(n, n); got += n; time.sleep(0.02)\n"
            "print(got, flush=True)\n"
            "while not Path(sys.argv[3]).exists(): time.sleep(0.01)\n"
            "b.release()")
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ledger), str(go), str(done)], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3
        go.touch()
        got = [int(p.stdout.readline()) for p in procs]
        assert sum(got) == 10, got  # not 30: the runs share one budget
        done.touch()
        assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    finally:
        for p in procs:
            p.kill()
            p.communicate()
    assert json.loads(ledger.read_text()) == {}  # every run released its reservation
    from genre_core.llm.shared_budget import SharedBudget

    assert SharedBudget(10, 10**9, ledger=ledger).admit([1] * 10) == 10  # sequential runs get the whole budget
