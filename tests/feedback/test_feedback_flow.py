"""The feedback flow on the Prefect engine: its task stores the rows and shows the trend as artifacts."""
from __future__ import annotations

import pytest

from genre_core.warehouse import connect
from tests.feedback.test_feedback_synthetic import OVERRIDES, toy_world


@pytest.mark.slow
def test_feedback_flow_writes_table_and_artifacts(genre_home) -> None:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from flows.feedback import feedback
    from flows.params import StageParams

    cfg = toy_world()
    with prefect_test_harness(server_startup_timeout=120):
        out = feedback(StageParams(config=None, overrides=OVERRIDES))
        with get_client(sync_client=True) as c:
            arts = {a.key: a for a in c.read_artifacts() if a.key}
    assert {r["k"] for r in out["rows"]} == {2, 3}
    assert {"feedback-trend", "feedback-summary"} <= set(arts)
    assert "R1" in str(arts["feedback-trend"].data) and "plots/feedback_trend.png" in arts["feedback-summary"].data
    with connect(cfg, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM feedback").fetchall()[0][0] == 2
