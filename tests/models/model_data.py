"""A tiny synthetic world whose right answers are known, in index space and as warehouse rows.

Two taste groups. Items 0..14 belong to group 0, 15..29 to group 1; items 12-14 and 27-29 are cold (in the
catalogue with content, never interacted with). User u belongs to group u % 2 and, in time order, first
takes the group's "hit" (item 0 or 15, so it is the most popular item of the group), then random other warm
items of the group. Text vectors point in the group's direction (+ noise): a planted content signal. Image
vectors are pure noise.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from genre_core.config import GenreConfig
from genre_core.models.base import IdMap
from genre_core.models.data import Interactions, TrainData
from genre_core.warehouse import connect

N_USERS, N_ITEMS = 40, 30
COLD = np.array([12, 13, 14, 27, 28, 29])
T0 = 1_600_000_000


def group_of_item(i: int | np.ndarray) -> int | np.ndarray:
    return np.asarray(i) // 15


@dataclass
class World:
    idmap: IdMap
    events: Interactions
    history: np.ndarray  # bool: history rows (none here)
    text: np.ndarray  # [N_ITEMS, 8]
    image: np.ndarray  # [N_ITEMS, 6]

    def data(self, train: Interactions | None = None) -> TrainData:
        feats = {"text": self.text, "image": self.image}
        masks = {m: np.ones(N_ITEMS, dtype=bool) for m in feats}
        return TrainData(self.idmap, train if train is not None else self.events, feats, masks)


def make_world(seed: int = 0, per_user: int = 8) -> World:
    rng = np.random.default_rng(seed)
    users, items, ts, values = [], [], [], []
    for u in range(N_USERS):
        g = u % 2
        warm = [i for i in range(15 * g, 15 * g + 15) if i not in COLD]
        hit = 15 * g
        others = rng.permutation([i for i in warm if i != hit])[: per_user - 1]
        for k, i in enumerate([hit, *others]):
            users.append(u)
            items.append(int(i))
            ts.append(T0 + 3600 * (u * 100 + k))
            values.append(float(rng.integers(3, 6)))
    n = len(users)
    events = Interactions(np.array(users, np.int64), np.array(items, np.int64), np.array(values, np.float32),
                          np.array(ts, np.int64), np.ones(n, bool))
    direction = np.zeros((2, 8), np.float32)
    direction[0, 0] = direction[1, 1] = 1.0
    text = direction[group_of_item(np.arange(N_ITEMS))] + 0.15 * rng.standard_normal((N_ITEMS, 8)).astype(np.float32)
    image = rng.standard_normal((N_ITEMS, 6)).astype(np.float32)
    idmap = IdMap(users=[f"u{u}" for u in range(N_USERS)], items=[f"i{i}" for i in range(N_ITEMS)])
    return World(idmap, events, np.zeros(n, bool), text, image)


def fill_warehouse(cfg: GenreConfig, world: World, extra_events: int = 0) -> None:
    """Write the world into the warehouse of ``cfg`` (GENRE_HOME): items, users, interactions, features.

    ``extra_events`` > 0 appends that many more events (new data for a nightly rerun)."""
    ev = world.events
    inter = pl.DataFrame({
        "user_id": [world.idmap.users[u] for u in ev.user], "item_id": [world.idmap.items[i] for i in ev.item],
        "value": ev.value.astype(np.float64), "ts": ev.ts,
    })
    if extra_events:
        inter = pl.concat([inter, pl.DataFrame({
            "user_id": [f"u{u % N_USERS}" for u in range(extra_events)],
            "item_id": [f"i{15 * (u % 2) + 1}" for u in range(extra_events)],
            "value": [4.0] * extra_events, "ts": [T0 + 10_000_000 + u for u in range(extra_events)]})])
    inter = inter.with_columns(
        pl.format("{}|{}|{}", "user_id", "item_id", "ts").alias("event_key"), pl.from_epoch("ts").alias("ts"))
    feats = []
    for modality, mat in (("text", world.text), ("image", world.image)):
        for i, vec in enumerate(mat):
            feats.append((world.idmap.items[i], modality, f"synthetic-{modality}",
                          hashlib.sha1(vec.tobytes()).hexdigest()[:12], int(mat.shape[1]), vec.tolist()))
    with connect(cfg) as con:
        con.executemany("INSERT INTO items (item_id, title, text, category) VALUES (?, ?, ?, ?)",
                        [(i, f"title {i}", "", "") for i in world.idmap.items])
        con.executemany("INSERT INTO users (user_id) VALUES (?)", [(u,) for u in world.idmap.users])
        con.register("_inter", inter.to_arrow())
        con.execute("""INSERT INTO interactions (event_key, user_id, item_id, event_type, value, ts, is_history,
                       batch_id) SELECT event_key, user_id, item_id, 'rating', value, ts, FALSE, 'test'
                       FROM _inter""")
        con.unregister("_inter")
        con.executemany("""INSERT INTO item_features (item_id, modality, model_id, content_hash, dim, vector,
                           created_at) VALUES (?, ?, ?, ?, ?, ?, now())""", feats)
