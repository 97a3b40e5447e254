"""Shared end-to-end fixtures: one Prefect stack (server, work pool, deployments from prefect.yaml, a process
worker) and one `nightly` deployment run per test session, reused by the API test and the browser test."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dataset

# Keep the CI run short: the full pipeline, with fewer epochs and the two models the tests assert on.
E2E_OVERRIDES = ["train.models=[popularity, hybrid]", "train.register_model=hybrid", "features.image.enabled=false"]


@dataclass(frozen=True)
class Stack:
    """A running local stack: GENRE_HOME, the server's URL and the environments to reach it."""

    home: Path
    url: str  # e.g. http://127.0.0.1:4312 (the UI; the API is under /api)
    env: dict[str, str]  # GENRE_HOME / GENRE_DATA_DIR, no Prefect settings
    client_env: dict[str, str]  # env + PREFECT_API_URL

    def worker_log(self) -> str:
        log = self.home / "logs" / "prefect-worker.log"
        return log.read_text() if log.exists() else ""


@dataclass(frozen=True)
class NightlyRun:
    stdout: str  # "STATE <type> <message>" and "ARTIFACTS [keys]" lines
    log: str  # stdout + stderr of the client, for failure messages
    recs: str  # "ROW (rows, users)" of `recommendations` right after the run (later tests may republish)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`genre stack up` on a free port with a fresh GENRE_HOME; `genre stack down` afterwards."""
    data = shared_dataset("ml-100k").parent
    home = tmp_path_factory.mktemp("e2e") / "home"
    port = _free_port()
    env = {**os.environ, "GENRE_HOME": str(home), "GENRE_DATA_DIR": str(data)}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILES_PATH"):
        env.pop(key, None)
    up = subprocess.run([sys.executable, "-m", "genre_core.cli", "stack", "up", "--port", str(port)], env=env,
                        cwd=REPO, capture_output=True, text=True, timeout=300)
    stack = Stack(home, f"http://127.0.0.1:{port}", env, {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"})
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield stack
    finally:
        subprocess.run([sys.executable, "-m", "genre_core.cli", "stack", "down"], env=env, cwd=REPO,
                       capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def nightly_run(prefect_stack: Stack) -> NightlyRun:
    """One run of the `nightly` deployment created through the API (what the UI's Run button does)."""
    script = textwrap.dedent(f"""
        from prefect.deployments import run_deployment
        from prefect.client.orchestration import get_client
        run = run_deployment("nightly/nightly", timeout=1500, poll_interval=3,
                             parameters={{"params": {{"config": "conf/movielens-100k.yaml",
                                                      "overrides": {E2E_OVERRIDES!r}}}}})
        print("STATE", run.state.type.value, run.state.message)
        with get_client(sync_client=True) as c:
            arts = c.read_artifacts()
            print("ARTIFACTS", sorted({{a.key for a in arts if a.key}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], env=prefect_stack.client_env, cwd=REPO,
                         capture_output=True, text=True, timeout=1600)
    recs = sql(prefect_stack, "SELECT count(*), count(DISTINCT user_id) FROM recommendations") \
        if "STATE COMPLETED" in out.stdout else ""
    return NightlyRun(out.stdout, out.stdout + out.stderr, recs)


def sql(stack: Stack, statement: str) -> str:
    """Run one read-only statement through genre_core.sql in a subprocess; returns the printed first row."""
    check = textwrap.dedent(f"""
        from genre_core.config import load_config
        from genre_core.sql import query
        cfg = load_config("conf/movielens-100k.yaml")
        print("ROW", query(cfg, {statement!r})[1][0])
    """)
    res = subprocess.run([sys.executable, "-c", check], env=stack.env, cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout
