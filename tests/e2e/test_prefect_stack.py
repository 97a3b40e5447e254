"""End-to-end: a real Prefect server on loopback, deployments from prefect.yaml, a process worker, and a run
of the `nightly` deployment created through the API (what the UI's Run button does). The stack and the run
are session fixtures (tests/e2e/conftest.py) shared with the browser test."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import NightlyRun, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_nightly_deployment_run_from_the_api(prefect_stack: Stack, nightly_run: NightlyRun) -> None:
    assert "STATE COMPLETED" in nightly_run.stdout, nightly_run.log[-4000:] + prefect_stack.worker_log()[-6000:]
    for key in ("ingest-batches", "ingest-validation", "feedback-summary", "features-summary", "train-comparison",
                "recommend-run", "nightly-summary"):
        assert key in nightly_run.stdout, f"artifact {key} missing: {nightly_run.stdout}"
    assert "ROW (18860, 943)" in nightly_run.recs, nightly_run.recs
    check = textwrap.dedent("""
        from genre_core.config import load_config
        from genre_core.tracking import load_champion
        champ = load_champion(load_config("conf/movielens-100k.yaml"))
        print("CHAMPION", champ.name, champ.version)
    """)
    res = subprocess.run([sys.executable, "-c", check], env=prefect_stack.env, cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "CHAMPION" in res.stdout
