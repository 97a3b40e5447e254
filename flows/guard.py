"""What every stage flow does around its work, given by the stage mechanism so a new stage gets it too:
``stage_flow`` loads the config and holds GENRE_HOME's pipeline lock; ``timed``/``timed_flow`` give tasks and
subflows the configured timeouts (the CLI and ``nightly`` apply ``timed_flow`` to every stage of
``genre_core.stages``); ``tasks.retry.stage_task`` gives every task the transient-only retry policy."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow

from flows.params import StageParams
from genre_core.config import GenreConfig
from genre_core.locking import pipeline_lock

StageBody = Callable[[GenreConfig, StageParams], dict[str, Any]]


@contextmanager
def guarded(stage: str, cfg: GenreConfig) -> Iterator[None]:
    """One writing run per GENRE_HOME (re-entrant for the nightly's stage subflows)."""
    with pipeline_lock(stage, cfg.execution.lock_wait_s):
        yield


def stage_flow(name: str) -> Callable[[StageBody], Any]:
    """Decorator: ``body(cfg, params) -> summary`` becomes the Prefect flow ``name`` taking ``StageParams`` (the
    typed form in the UI); the config is loaded (a bad one fails before any work) and the whole body runs
    under the pipeline lock. The flow's function carries ``genre_stage = name`` (checked by the tests)."""

    def make(body: StageBody) -> Any:
        def run(params: StageParams = StageParams()) -> dict[str, Any]:
            cfg = params.load()
            with guarded(name, cfg):
                return body(cfg, params)

        run.__name__, run.__qualname__, run.__doc__ = body.__name__, body.__qualname__, body.__doc__
        run.__module__ = body.__module__
        run.genre_stage = name  # type: ignore[attr-defined]
        return flow(name=name, log_prints=True, validate_parameters=True)(run)

    return make


def timed(task: Any, cfg: GenreConfig) -> Any:
    """``task`` with ``timeout_seconds`` = ``execution.task_timeout_s``: a hang fails the run."""
    return task.with_options(timeout_seconds=cfg.execution.task_timeout_s)


def timed_flow(flow_: Any, cfg: GenreConfig) -> Any:
    """``flow_`` with ``timeout_seconds`` = ``execution.flow_timeout_s``."""
    return flow_.with_options(timeout_seconds=cfg.execution.flow_timeout_s)
