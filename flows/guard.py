"""What every flow does around its work: hold GENRE_HOME's pipeline lock and give tasks the configured timeout."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from genre_core.config import GenreConfig
from genre_core.locking import pipeline_lock


@contextmanager
def guarded(stage: str, cfg: GenreConfig) -> Iterator[None]:
    """One writing run per GENRE_HOME (re-entrant for the nightly's stage subflows)."""
    with pipeline_lock(stage, cfg.execution.lock_wait_s):
        yield


def timed(task: Any, cfg: GenreConfig) -> Any:
    """``task`` with ``timeout_seconds`` = ``execution.task_timeout_s``: a hang fails the run."""
    return task.with_options(timeout_seconds=cfg.execution.task_timeout_s)


def timed_flow(flow: Any, cfg: GenreConfig) -> Any:
    """``flow`` with ``timeout_seconds`` = ``execution.flow_timeout_s``."""
    return flow.with_options(timeout_seconds=cfg.execution.flow_timeout_s)
