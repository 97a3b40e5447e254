"""The champion stays loadable: a version's files are on disk (fsync) and load before the alias moves, and a
champion whose artifacts cannot be loaded never lets training be skipped."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


def fsync_tree(root: Path) -> int:
    """fsync every file under ``root`` and every folder (so the names are durable too). Returns files synced."""
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            n += 1
        dfd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return n


def sync_local_artifacts(source_uri: str) -> int:
    """fsync the model files when the artifact store is local (``file://`` or a path); 0 for remote stores."""
    parsed = urlparse(source_uri)
    if parsed.scheme not in ("", "file"):
        return 0
    path = Path(unquote(parsed.path))
    return fsync_tree(path) if path.exists() else 0


def check_loadable(c: Any, run_id: str, artifact: str) -> str | None:
    """Download the run's model artifact and load it on the CPU; None when it loads, else the reason."""
    from genre_core.models.base import Recommender  # noqa: PLC0415 - torch only when checking

    try:
        with tempfile.TemporaryDirectory(prefix="genre-check-") as tmp:
            local = c.download_artifacts(run_id, artifact, tmp)
            Recommender.load(Path(local), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means "not loadable"; the reason is reported
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None
