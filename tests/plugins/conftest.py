"""The test plugin package ``genre_testplugin`` lives here; tests import it the way a user's config would."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

PLUGIN_ROOT = Path(__file__).resolve().parent
GENRES = ["Action", "Comedy", "Drama"]


@pytest.fixture(autouse=True)
def _isolated_registries() -> Iterator[None]:
    """Plugin classes registered by a test leave with it: later tests see the built-in names only."""
    from genre_core.features.registry import EXTRACTORS
    from genre_core.ingest.registry import READERS
    from genre_core.llm.backends.base import BACKENDS
    from genre_core.models.registry import MODELS
    from genre_core.recommend.targets import TARGETS

    registries = [MODELS, EXTRACTORS, READERS, TARGETS, BACKENDS]
    for reg in registries:
        reg.names()  # built-ins loaded before the snapshot
    saved = [dict(reg._classes) for reg in registries]
    yield
    for reg, classes in zip(registries, saved):
        reg._classes.clear()
        reg._classes.update(classes)
    for name in [m for m in sys.modules if m == "genre_testplugin" or m.startswith("genre_testplugin.")]:
        del sys.modules[name]


@pytest.fixture
def plugin_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``genre_testplugin`` importable (as if pip-installed)."""
    monkeypatch.syspath_prepend(str(PLUGIN_ROOT))
    return PLUGIN_ROOT


def write_toy_jsonl(root: Path, n_users: int = 30, n_items: int = 24, seed: int = 0) -> Path:
    """items.jsonl / events.jsonl under ``root/toy``: users prefer one genre (user % 3), items cycle genres."""
    rng = np.random.default_rng(seed)
    folder = root / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "items.jsonl").open("w") as fh:
        for i in range(n_items):
            fh.write(json.dumps({"id": f"i{i}", "title": f"Movie {i}", "genres": GENRES[i % 3]}) + "\n")
    with (folder / "events.jsonl").open("w") as fh:
        t0 = 1_600_000_000
        for u in range(n_users):
            liked = [i for i in range(n_items) if i % 3 == u % 3]
            for n, i in enumerate(rng.permutation(liked)[:6]):
                fh.write(json.dumps({"user": f"u{u}", "item": f"i{i}", "rating": int(rng.integers(3, 6)),
                                     "time": t0 + u * 1000 + n}) + "\n")
            other = int(rng.integers(0, n_items))
            fh.write(json.dumps({"user": f"u{u}", "item": f"i{other}", "rating": 2, "time": t0 + u * 1000 + 50}) + "\n")
    return folder
