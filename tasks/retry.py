"""Retry only what a second try can fix: lock contention, transient I/O, HTTP 429/5xx (``retry_condition_fn``).

A refused batch, a bad config, a missing file, a full disk or a bug fails at once: retrying would only record
the same failure again.
"""
from __future__ import annotations

import errno
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
