"""One writing pipeline run per GENRE_HOME: an ``fcntl.flock`` on ``$GENRE_HOME/pipeline.lock``.

The lock file holds the holder's pid, command and start time, so a second run can say who it waits for.
The lock is re-entrant within a process (the nightly flow runs the stage flows in the same process) and is
released by the kernel when the holder dies, so a crashed run never blocks the next one.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from genre_core.paths import genre_home
from genre_core.security.redact import redact

LOCK_NAME = "pipeline.lock"
_local = threading.Lock()
_held: dict[str, object] = {"depth": 0, "fd": None}


class PipelineBusy(RuntimeError):
    """Another run holds the pipeline lock of this GENRE_HOME past the configured wait."""


def lock_path() -> Path:
    return genre_home() / LOCK_NAME


def holder(path: Path | None = None) -> dict[str, object] | None:
    """The {"pid", "stage", "command", "since"} written by the current holder, or None if unreadable."""
    try:
        return json.loads((path or lock_path()).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None


def _describe(info: dict[str, object] | None) -> str:
    if not info:
        return "another process (no holder details)"
    return f"pid {info.get('pid')} (stage {info.get('stage')}, since {info.get('since')}: {info.get('command')})"


@contextmanager
def pipeline_lock(stage: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the pipeline lock for ``stage``; wait up to ``wait_s`` seconds, then raise PipelineBusy naming the
    holder (pid, stage, since). Re-entrant in the holding process."""
    with _local:
        reentrant = bool(_held["depth"])
        if reentrant:
            _held["depth"] = int(_held["depth"]) + 1  # type: ignore[arg-type]
    if reentrant:
        try:
            yield
        finally:
            with _local:
                _held["depth"] = int(_held["depth"]) - 1  # type: ignore[arg-type]
        return
    path = lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineBusy(
                        f"another GENRE run holds {path}: {_describe(holder(path))}; waited {wait_s:.0f}s "
                        "(execution.lock_wait_s). Try again when it has finished.") from None
                time.sleep(0.2)
        info = {"pid": os.getpid(), "stage": stage, "command": redact(" ".join(sys.argv))[:300],
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        with _local:
            _held.update(depth=1, fd=fd)
        try:
            yield
        finally:
            with _local:
                _held.update(depth=0, fd=None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def file_lock(path: Path) -> "_FileLock":
    """A plain blocking exclusive flock on ``path`` (short critical sections: champion alias, LLM budget)."""
    return _FileLock(path)


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
