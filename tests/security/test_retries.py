"""Point 6: tasks retry transient failures only; a refused batch is recorded once and its rejects stored once,
also when the same bad file comes again."""
from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest

from tasks.retry import is_transient
from tests.security.shop import events, make_shop, one_error_line


class _HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status


def test_only_transient_failures_are_retried() -> None:
    from genre_core.ingest.pipeline import BatchRefused

    lock = duckdb.IOException('Could not set lock on file "w.duckdb": Conflicting lock is held')
    wrapped = RuntimeError("warehouse w.duckdb is locked by another process (a pipeline stage is writing)")
    assert is_transient(lock) and is_transient(wrapped)
    assert is_transient(OSError(errno.EAGAIN, "try again")) and is_transient(TimeoutError())
    assert is_transient(_HTTPError(429)) and is_transient(_HTTPError(503))
    for exc in (BatchRefused("too many rejects"), ValueError("bad config"), FileNotFoundError("x"),
                OSError(errno.ENOSPC, "No space left on device"), _HTTPError(404), _HTTPError(400), KeyError("x")):
        assert not is_transient(exc), exc


@pytest.mark.slow
def test_refused_batch_is_recorded_once_through_the_prefect_engine(tmp_path: Path) -> None:
    bad = "".join(f"cust{u:03d},sku1,lots,2024-11-09 10:00:00,buy\n" for u in range(10))
    shop = make_shop(tmp_path, events_text=events() + bad)  # 10 of 34 rows rejected > max_reject_rate 0.2
    env = shop.env(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    flow = shop.genre("ingest", env=env, timeout=400)  # the Prefect flow: the task would retry twice before
    assert flow.returncode == 1 and "batch refused" in one_error_line(flow)
    again = shop.genre("ingest", "--direct", env=env)  # the same bad file on the next night
    assert again.returncode == 1 and "not recorded again" in one_error_line(again)
    counts = shop.genre("sql", "SELECT (SELECT count(*) FROM ingest_batches WHERE status = 'refused') AS refused, "
                               "(SELECT count(*) FROM rejects) AS rejects", "--csv")
    assert counts.stdout.splitlines()[1] == "1,10", counts.stdout
