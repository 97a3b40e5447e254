"""Turn any exception that reaches the CLI into one readable, redacted line (no traceback)."""
from __future__ import annotations

import errno

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
