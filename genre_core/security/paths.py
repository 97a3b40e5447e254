"""Untrusted file paths from data (``items.image_path``): confined to the data dir, regular files only,
size-capped before reading.

A path that starts with ``~``, or that resolves (``..``, symlinks) outside the data dir, is refused. A FIFO, a
device such as ``/dev/zero``, a socket or a directory is refused *without blocking*: the file is opened with
``O_NONBLOCK`` and checked with ``fstat`` before a single byte is read.
"""
from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genre_core.config import GenreConfig


def confinement(cfg: "GenreConfig") -> tuple[Path, Path | None]:
    """(data dir: the confinement root, dataset folder: where relative data paths start) for ``cfg``."""
    from genre_core.paths import data_dir, resolve_data_path  # noqa: PLC0415

    return data_dir(cfg), resolve_data_path(cfg, cfg.dataset.path)


class UnsafePath(OSError):
    """A data path refused by the rules above; ``str()`` is the reason, starting with ``refused:``."""


def confine(root: Path | None, raw: str, base: Path | None = None) -> Path:
    """Resolve ``raw`` (relative to ``base``, default ``root``; or absolute) and return the real path, which
    must lie inside ``root`` after following ``..`` and symlinks.

    With ``root=None`` only the ``~`` rule applies (library use outside a pipeline). Raises UnsafePath.
    """
    text = str(raw).strip()
    if text.startswith("~"):
        raise UnsafePath(f"refused: path {text!r} starts with '~'; data paths are relative to the data dir")
    p = Path(text)
    if root is None:
        return p
    top = Path(os.path.realpath(root))
    real = Path(os.path.realpath(p if p.is_absolute() else (Path(base) if base else Path(root)) / p))
    if not real.is_relative_to(top):
        raise UnsafePath(f"refused: path {text!r} resolves to {real}, outside the data dir {top}")
    return real


def open_regular(path: Path, max_bytes: int | None) -> int:
    """Open ``path`` for reading without blocking and return the fd of a regular file of at most
    ``max_bytes``; the fd is switched back to blocking mode. Raises UnsafePath (FIFO, device, directory,
    oversized) or the OSError of ``open`` (missing file, permission)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise UnsafePath(f"refused: {path} is {kind}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafePath(f"oversized: file is {st.st_size / 1e6:.1f} MB > {max_bytes / 1e6:g} MB")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return fd
    except BaseException:
        os.close(fd)
        raise
