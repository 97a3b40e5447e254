"""Shared fixtures. Datasets are read from ../shared/data (or $GENRE_DATA_DIR); never copied into the repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENRE_DATA_DIR") or REPO.parent / "shared" / "data")

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def shared_dataset(name: str) -> Path:
    """Path of a shared dataset folder, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"dataset {name} not found at {path} (set GENRE_DATA_DIR to the folder holding it)")
    return path


@pytest.fixture
def genre_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GENRE_HOME for one test."""
    home = tmp_path / "genre_home"
    home.mkdir()
    monkeypatch.setenv("GENRE_HOME", str(home))
    return home


@pytest.fixture
def ml100k() -> Path:
    return shared_dataset("ml-100k")


@pytest.fixture
def tmdb() -> Path:
    return shared_dataset("ml-100k-tmdb-posters")
