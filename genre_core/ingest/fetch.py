"""``genre data fetch``: download a public dataset from its publisher and verify it before use.

MovieLens 100K comes from GroupLens as ``ml-100k.zip``; the files the pipeline reads are checked against
their known SHA-256 digests (the official 1998 release), so a corrupted or tampered download is refused.
The URL can be overridden with ``GENRE_MOVIELENS_100K_URL`` (a mirror, or a ``file://`` path).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from genre_core.paths import fetched_datasets_dir

MOVIELENS_100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MOVIELENS_100K_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
}


class ChecksumError(RuntimeError):
    """A downloaded file whose digest does not match the publisher's release."""


def _download(url: str, dest: Path, timeout: float = 60.0) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as out:  # noqa: S310 - https/file only
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {url.rsplit('/', 1)[-1]}") as bar:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def fetch_movielens_100k(target_root: Path | None = None, url: str | None = None) -> Path:
    """Download, verify and unpack MovieLens 100K into ``<target_root>/ml-100k``; returns that folder.

    Idempotent: an existing verified copy is returned without downloading. Raises ChecksumError on a digest
    mismatch (nothing is left behind) and RuntimeError when the download fails.
    """
    root = target_root or fetched_datasets_dir()
    final = root / "ml-100k"
    if final.is_dir() and _verify(final, raise_on_error=False):
        return final
    url = url or os.environ.get("GENRE_MOVIELENS_100K_URL") or MOVIELENS_100K_URL
    if not url.startswith(("https://", "http://", "file://")):
        raise ValueError(f"GENRE_MOVIELENS_100K_URL must be an http(s) or file URL, got {url!r}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        archive = Path(tmp) / "ml-100k.zip"
        try:
            _download(url, archive)
        except OSError as exc:
            raise RuntimeError(f"could not download MovieLens 100K from {url}: {exc}. Download ml-100k.zip by hand "
                               f"and set GENRE_MOVIELENS_100K_URL=file:///path/to/ml-100k.zip") from exc
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise ChecksumError(f"{url} is not a valid zip archive: {exc}") from exc
        unpacked = Path(tmp) / "ml-100k"
        _verify(unpacked, raise_on_error=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(unpacked, final)
    return final


def _verify(folder: Path, raise_on_error: bool) -> bool:
    for name, expected in MOVIELENS_100K_SHA256.items():
        path = folder / name
        got = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if got != expected:
            if raise_on_error:
                raise ChecksumError(f"{path}: sha256 {got} does not match the official MovieLens 100K release "
                                    f"({expected}); the download is corrupt or not the original archive")
            return False
    return True


def fetch_dataset(name: str) -> Path:
    """Fetch a dataset by name into GENRE_HOME/datasets; returns its folder."""
    if name == "movielens-100k":
        return fetch_movielens_100k()
    raise ValueError(f"unknown dataset {name!r}; valid: ['movielens-100k']")
