"""Retry only what a second try can fix: lock contention, transient I/O, HTTP 429/5xx (``retry_condition_fn``).

A refused batch, a bad config, a missing file, a full disk or a bug fails at once: retrying would only record
the same failure again.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED,
                    errno.ECONNABORTED, errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH}
_LOCK_WORDS = ("could not set lock", "conflicting lock", "is locked by another process", "database is locked")


def is_transient(exc: BaseException | None) -> bool:
    """True for a DuckDB/SQLite lock error, an OSError with a transient errno, or an HTTP 429/5xx."""
    seen = 0
    while exc is not None and seen < 5:  # look through ``raise ... from`` chains
        text = str(exc).lower()
        if any(w in text for w in _LOCK_WORDS):
            return True
        if isinstance(exc, (TimeoutError, ConnectionError)):
            return True
        if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
            return True
        status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
        if isinstance(status, int) and (status == 429 or 500 <= status < 600):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is transient (see ``is_transient``)."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the state's exception is what we classify
        return is_transient(exc)
    return False


def stage_task(name: str, retries: int = 0, retry_delay_seconds: float | list[float] = 0) -> Callable[..., Any]:
    """The one way a stage's Prefect task is declared (``@stage_task("ingest-dataset", retries=2, ...)``): it
    retries only transient failures (``retry_transient``) and never uses Prefect's result cache (stages change
    the warehouse and are idempotent by their own fingerprints, so a cached result would skip a needed write).
    Its timeout is given per run from the config by ``flows.guard.timed``."""
    from prefect import task  # noqa: PLC0415
    from prefect.cache_policies import NO_CACHE  # noqa: PLC0415

    return task(name=name, retries=retries, retry_delay_seconds=retry_delay_seconds,
                retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
