"""Fixtures for the recommend stage: a tiny factor model that follows the Recommender contract, and a warehouse.

The stand-in model has the exact methods of ``genre_core.models.base.Recommender`` (idmap, score,
item_vectors, user_history, to), so the stage is tested independently of the model stage.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from genre_core.config import GenreConfig
from genre_core.recommend.publish import RunRecord
from genre_core.warehouse import connect


@dataclass
class TinyIdMap:
    users: list[str]
    items: list[str]
    user_index: dict[str, int] = field(init=False)
    item_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {v: i for i, v in enumerate(self.items)}


class FactorModel:
    """score = U[user] @ V.T; item_vectors = V (or None); history = the given training items per user."""

    def __init__(self, idmap: TinyIdMap, user_f: torch.Tensor, item_f: torch.Tensor,
                 history: dict[int, list[int]], with_vectors: bool = True) -> None:
        self.idmap, self.user_f, self.item_f = idmap, user_f, item_f
        self.history, self.with_vectors = history, with_vectors

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_f[user_idx] @ self.item_f.T

    def item_vectors(self) -> torch.Tensor | None:
        return self.item_f if self.with_vectors else None

    def user_history(self, user_idx: torch.Tensor) -> list[np.ndarray]:
        return [np.asarray(self.history.get(int(u), []), dtype=np.int64) for u in user_idx.tolist()]

    def to(self, device: torch.device | str) -> FactorModel:
        self.user_f, self.item_f = self.user_f.to(device), self.item_f.to(device)
        return self


@dataclass
class World:
    cfg: GenreConfig
    model: FactorModel
    interactions: list[tuple[str, str, float]]
    all_users: list[str]  # warehouse users (users table + interactions)
    cold_users: list[str]  # unknown to the model or without training history


def make_world(home: Path, n_users: int = 40, n_items: int = 30, k: int = 5, seed: int = 0,
               with_vectors: bool = True, cold_start: str = "popularity") -> World:
    """Warehouse + model: users u0..u{n-1} known to the model (u0 without training history), plus 'new1'
    (interactions only, unknown to the model) and 'new2' (users table only, no interactions)."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n_users)]
    items = [f"i{j}" for j in range(n_items)]
    idmap = TinyIdMap(users, items)
    history = {u: sorted(rng.choice(n_items, size=rng.integers(2, 8), replace=False).tolist())
               for u in range(1, n_users)}
    inter: list[tuple[str, str, float]] = []
    for u, its in history.items():
        inter += [(users[u], items[j], float(rng.integers(1, 6))) for j in its]
        # one extra interaction the model never trained on: must still be excluded as seen
        extra = int(rng.integers(n_items))
        inter.append((users[u], items[extra], 4.0))
    inter += [("new1", "i3", 5.0), ("new1", "i_unknown", 5.0), ("u0", "i7", 2.0)]
    gen = torch.Generator().manual_seed(seed)
    model = FactorModel(idmap, torch.randn(n_users, 8, generator=gen), torch.randn(n_items, 8, generator=gen),
                        history, with_vectors)
    cfg = GenreConfig()
    cfg.recommend.k = k
    cfg.recommend.similar_k = 4
    cfg.recommend.block_users = 7
    cfg.recommend.device = "cpu"
    cfg.recommend.cold_start = cold_start  # type: ignore[assignment]
    with connect(cfg) as con:
        con.executemany("INSERT INTO users (user_id) VALUES (?)", [[u] for u in users + ["new2"]])
        con.executemany("INSERT INTO items (item_id, title) VALUES (?, ?)", [[i, i] for i in items + ["i_unknown"]])
        con.executemany(
            "INSERT INTO interactions (event_key, user_id, item_id, event_type, value, batch_id) "
            "VALUES (?, ?, ?, 'rating', ?, 'b1')",
            [[f"e{n}", u, i, v] for n, (u, i, v) in enumerate(inter)],
        )
    return World(cfg, model, inter, sorted(users + ["new1", "new2"]), ["new1", "new2", "u0"])


def synthetic_recs(n_users: int, k: int, seed: int) -> pl.DataFrame:
    """A complete recommendations frame: n_users x k rows (distinct items per user), scores decreasing with rank."""
    rng = np.random.default_rng(seed)
    users = np.repeat([f"u{i:05d}" for i in range(n_users)], k)
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int32), n_users)
    return pl.DataFrame({
        "user_id": users,
        "rank": ranks,
        "item_id": [f"i{j}" for j in np.argsort(rng.random((n_users, 10 * k)), axis=1)[:, :k].ravel()],
        "score": (1.0 / ranks).astype(np.float32),
        "because_item_id": pl.Series([None] * (n_users * k), dtype=pl.String),
    })


def run_record(run_id: str, n_users: int, k: int, started: datetime | None = None) -> RunRecord:
    started = started or datetime.now(UTC).replace(tzinfo=None)
    return RunRecord(run_id=run_id, model_name="m", model_version="1", model_run_id="r", k=k, users=n_users,
                     rows=n_users * k, cold_users=0, started_at=started, finished_at=started)


@pytest.fixture
def world(genre_home: Path) -> World:
    return make_world(genre_home)


@pytest.fixture
def world_factory(genre_home: Path) -> Callable[..., World]:
    """``world_factory(**kwargs)``: make_world in this test's GENRE_HOME with other parameters."""
    return lambda **kw: make_world(genre_home, **kw)


@pytest.fixture
def recs_factory() -> Callable[[int, int, int], pl.DataFrame]:
    return synthetic_recs


@pytest.fixture
def run_factory() -> Callable[..., RunRecord]:
    return run_record
