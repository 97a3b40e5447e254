"""End-to-end: a real Prefect server on loopback, deployments from prefect.yaml, a process worker, and a run
of the `nightly` deployment created through the API (what the UI's Run button does)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, shared_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Keep the CI run short: the full pipeline, with fewer epochs and the two models the test asserts on.
E2E_OVERRIDES = ["train.models=[popularity, hybrid]", "features.image.enabled=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nightly_deployment_run_from_the_api(tmp_path):
    data = shared_dataset("ml-100k").parent
    home = tmp_path / "home"
    port = _free_port()
    env = {**os.environ, "GENRE_HOME": str(home), "GENRE_DATA_DIR": str(data)}
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILES_PATH"):
        env.pop(key, None)
    up = subprocess.run([sys.executable, "-m", "genre_core.cli", "stack", "up", "--port", str(port)], env=env,
                        cwd=REPO, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
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
        client_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        out = subprocess.run([sys.executable, "-c", script], env=client_env, cwd=REPO, capture_output=True,
                             text=True, timeout=1600)
        log = out.stdout + out.stderr
        worker_log = (home / "logs" / "prefect-worker.log").read_text() if (home / "logs" / "prefect-worker.log").exists() else ""
        assert "STATE COMPLETED" in out.stdout, log[-4000:] + worker_log[-6000:]
        for key in ("ingest-batches", "ingest-validation", "feedback-summary", "features-summary", "train-comparison",
                    "recommend-run",
                    "nightly-summary"):
            assert key in out.stdout, f"artifact {key} missing: {out.stdout}"
        check = textwrap.dedent("""
            from genre_core.config import load_config
            from genre_core.sql import query
            from genre_core.tracking import load_champion
            cfg = load_config("conf/movielens-100k.yaml")
            print("RECS", query(cfg, "SELECT count(*), count(DISTINCT user_id) FROM recommendations")[1][0])
            champ = load_champion(cfg)
            print("CHAMPION", champ.name, champ.version)
        """)
        res = subprocess.run([sys.executable, "-c", check], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "RECS (18860, 943)" in res.stdout, res.stdout
        assert "CHAMPION" in res.stdout
    finally:
        subprocess.run([sys.executable, "-m", "genre_core.cli", "stack", "down"], env=env, cwd=REPO,
                       capture_output=True, timeout=60)
