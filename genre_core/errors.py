"""Turn any exception that reaches the CLI into one readable, redacted line (no traceback)."""
from __future__ import annotations

import errno
import logging
import os

from genre_core.security.literal import escape_controls
from genre_core.security.redact import redact

_OS_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file size limit was reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


def one_line(exc: BaseException | str) -> str:
    """The message, redacted (no credentials), control characters escaped; multi-line config errors are
    joined with ' | ' so the CLI prints exactly one line."""
    text = redact(str(exc)).strip()
    return " | ".join(escape_controls(x.strip(), keep_newlines=True) for x in text.splitlines() if x.strip())


def describe_error(exc: BaseException) -> str:
    """What went wrong, for the operator: OS errors name the file and the cause (disk full, permission),
    DuckDB errors keep their first line, anything else ``Type: message``."""
    if isinstance(exc, OSError) and exc.errno in _OS_HINTS:
        where = f" ({exc.filename})" if exc.filename else ""
        return one_line(f"{_OS_HINTS[exc.errno]}{where}: {exc.strerror or exc}; previous results are unchanged")
    text = str(exc)
    low = text.lower()
    if any(k in low for k in ("no space left", "file too large", "disk quota", "permission denied", "read-only file")):
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return one_line(f"cannot write under GENRE_HOME: {first}; previous results are unchanged")
    if isinstance(exc, (ValueError, RuntimeError, LookupError, FileNotFoundError, OSError)):
        return one_line(text or type(exc).__name__)
    return one_line(f"{type(exc).__name__}: {text}")


class _NoTraceback(logging.Formatter):
    """Wraps a console formatter: the record's message without the traceback (the UI/API log keeps it)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def console_without_tracebacks(prefix: str = "prefect") -> int:
    """Make the terminal handlers of the root and ``prefect`` loggers print no traceback (``GENRE_DEBUG=1`` keeps them).

    The CLI prints one ``genre ...: error:`` line for a failure; the orchestrator's own console logging would
    otherwise print the stack as well. Returns how many handlers were changed.
    """
    if os.environ.get("GENRE_DEBUG"):
        return 0
    names = ["", prefix] + [n for n in logging.Logger.manager.loggerDict if n.startswith(prefix + ".")]
    changed = 0
    for name in names:
        for h in logging.getLogger(name).handlers:
            is_console = isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            if is_console and not isinstance(h.formatter, _NoTraceback):
                h.setFormatter(_NoTraceback(h.formatter))
                changed += 1
    return changed
