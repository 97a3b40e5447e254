"""A tiny shop dataset on disk and a way to run ``genre`` exactly as a user would (a real subprocess)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HEADER_EVENTS = "customer,sku,qty,time,kind\n"
HEADER_ITEMS = "sku,name,description,department,picture,extra\n"


def events(n_users: int = 6, n_items: int = 8) -> str:
    rows = [f"cust{u:03d},sku{(u * 3 + j) % n_items},{1 + (u + j) % 4},2024-11-{1 + j:02d} 10:00:00,buy"
            for u in range(n_users) for j in range(4)]
    return HEADER_EVENTS + "\n".join(rows) + "\n"


def items(n_items: int = 8, first_title: str | None = None, picture: str = "") -> str:
    rows = []
    for i in range(n_items):
        title = first_title if (i == 0 and first_title is not None) else f"Product {i}"
        rows.append(f'sku{i},"{title}",A fine product number {i},dept{i % 3},{picture if i == 0 else ""},')
    return HEADER_ITEMS + "\n".join(rows) + "\n"


@dataclass
class Shop:
    """Paths of one test installation: data dir, GENRE_HOME and the config file."""

    root: Path
    data: Path
    home: Path
    config: Path

    @property
    def folder(self) -> Path:
        return self.data / "shop"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GENRE_", "PREFECT_API"))}
        env.update(GENRE_HOME=str(self.home), GENRE_DATA_DIR=str(self.data), PYTHONPATH=str(REPO),
                   MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", GX_ANALYTICS_ENABLED="false",
                   TQDM_DISABLE="1", COLUMNS="200")
        env.update(extra)
        return env

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "genre_core.cli", *args]

    def genre(self, *args: str, timeout: float = 240, env: dict[str, str] | None = None,
              **popen: object) -> subprocess.CompletedProcess[str]:
        """Run ``genre ARGS`` in a subprocess; ``--config`` is added for commands that take one."""
        full = list(args)
        if args and args[0] not in ("data", "stack") and "--config" not in args:
            full[1:1] = ["--config", str(self.config)]
        return subprocess.run(self.cmd(*full), cwd=REPO, env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout, **popen)  # type: ignore[arg-type]


def make_shop(tmp: Path, *, title: str | None = None, picture: str = "", extra: dict | None = None,
              events_text: str | None = None) -> Shop:
    """Write the dataset and a config (generic CSV reader, text/image features off, fast models)."""
    data, home = tmp / "data", tmp / "home"
    (data / "shop").mkdir(parents=True)
    home.mkdir()
    (data / "shop" / "events.csv").write_text(events_text if events_text is not None else events(), encoding="utf-8")
    (data / "shop" / "products.csv").write_text(items(first_title=title, picture=picture), encoding="utf-8")
    cfg = {
        "dataset": {"name": "shop", "reader": "generic", "path": "shop", "tmdb_path": None, "fetch": None,
                    "fetch_if_missing": False,
                    "generic": {"interactions": "events.csv", "items": "products.csv",
                                "columns": {"user_id": "customer", "item_id": "sku", "value": "qty", "ts": "time",
                                            "event_type": "kind"},
                                "item_columns": {"item_id": "sku", "title": "name", "text": "description",
                                                 "category": "department", "image_path": "picture"},
                                "timestamp_format": "%Y-%m-%d %H:%M:%S"}},
        "validation": {"value_min": 0, "value_max": None, "max_reject_rate": 0.2},
        "features": {"text": {"enabled": False}, "image": {"enabled": False}},
        "train": {"models": ["popularity"], "register_model": "popularity", "device": "cpu"},
        "recommend": {"k": 3},
        "warehouse": {"lock_timeout_s": 5},
    }
    if extra:
        _merge(cfg, extra)
    config = tmp / "shop.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Shop(tmp, data, home, config)


def copy_shop(shop: Shop, dest: Path, home: Path | None = None) -> Shop:
    """A private copy of ``shop`` under ``dest`` (data dir, config, GENRE_HOME; ``home`` elsewhere if given):
    its results as they are, without running the stages again."""
    shutil.copytree(shop.root, dest, symlinks=True, ignore=shutil.ignore_patterns(shop.home.name),
                    dirs_exist_ok=True)
    home = home or dest / shop.home.name
    shutil.copytree(shop.home, home, symlinks=True)
    return Shop(dest, dest / shop.data.name, home, dest / shop.config.name)


def _merge(base: dict, over: dict) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command, checked to be one ``genre ...`` line and no traceback."""
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("genre")]
    assert lines, err
    return lines[-1]
