"""Where state and data live: ``GENRE_HOME`` for all pipeline state, the data dir for input datasets."""
from __future__ import annotations

import os
from pathlib import Path

from genre_core.config import PROJECT_ROOT, GenreConfig


def genre_home() -> Path:
    """The state directory: ``$GENRE_HOME`` or ``./.genre``. Created on first use, not at import."""
    home = Path(os.environ.get("GENRE_HOME") or ".genre").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_dir(cfg: GenreConfig) -> Path:
    """Root for relative dataset paths: config ``data_dir``, ``$GENRE_DATA_DIR``, ``./data``, ``../shared/data``."""
    if cfg.data_dir:
        return Path(cfg.data_dir).expanduser().resolve()
    env = os.environ.get("GENRE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    for cand in (Path("data"), PROJECT_ROOT / "data", PROJECT_ROOT.parent / "shared" / "data"):
        if cand.is_dir():
            return cand.resolve()
    return (Path("data")).resolve()


def resolve_data_path(cfg: GenreConfig, path: str | None) -> Path | None:
    """A dataset path from config: absolute as is, relative against the data dir."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_dir(cfg) / p


def fetched_datasets_dir() -> Path:
    """Datasets downloaded by ``genre data fetch`` live here."""
    return genre_home() / "datasets"


def warehouse_path(cfg: GenreConfig) -> Path:
    p = Path(cfg.warehouse.path).expanduser()
    return p if p.is_absolute() else genre_home() / p


def serving_path(cfg: GenreConfig) -> Path:
    p = Path(cfg.warehouse.serving_path).expanduser()
    return p if p.is_absolute() else genre_home() / p
