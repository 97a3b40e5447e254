"""Offline evaluation and the published recommendations rank through one path (genre_core.ranking): for the same
model and users, with the model trained on the warehouse's interactions (so both mean the same by "seen"), the
lists agree item for item."""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch

from genre_core.evaluation.evaluate import EvalSet, evaluate_per_user
from genre_core.models.loading import read_warehouse, to_index_space
from genre_core.models.registry import build_model
from genre_core.paths import serving_path
from genre_core.recommend.pipeline import recommend_with_model
from tests.recommend.conftest import make_world


@pytest.mark.parametrize("name", ["popularity", "itemknn", "bpr", "content"])
def test_evaluation_and_published_lists_agree(genre_home: Path, name: str) -> None:
    world = make_world(genre_home, n_users=40, n_items=30, k=6)
    cfg = world.cfg
    cfg.train.bpr.epochs = 3
    data, events, _ = to_index_space(read_warehouse(cfg), None)
    data = data.with_train(events)
    if name == "content":  # content vectors: a fixed random embedding per item
        rng = np.random.default_rng(1)
        data.item_features["text"] = rng.standard_normal((data.idmap.n_items, 4)).astype(np.float32)
        data.item_feature_mask["text"] = np.ones(data.idmap.n_items, dtype=bool)
    model = build_model(name, cfg.train, data.idmap)
    model.fit(data)
    # every warm user, with every item as a target so that evaluation keeps them all
    seen = model.seen(torch.arange(data.idmap.n_users))
    users = np.flatnonzero(seen.lengths() > 0).astype(np.int64)
    n = data.idmap.n_items
    es = EvalSet("all", users, np.arange(users.size + 1, dtype=np.int64) * n, np.tile(np.arange(n), users.size))
    _, top = evaluate_per_user(model, es, [cfg.recommend.k])
    assert top.shape == (users.size, cfg.recommend.k)

    recommend_with_model(cfg, model, model_name=name, model_version="1", model_run_id="r", progress=False)
    with duckdb.connect(str(serving_path(cfg)), read_only=True) as con:
        rows = con.sql("SELECT user_id, item_id FROM recommendations ORDER BY user_id, rank").fetchall()
    published: dict[str, list[str]] = {}
    for user, item in rows:
        published.setdefault(user, []).append(item)
    items = data.idmap.items
    evaluated = {data.idmap.users[u]: [items[i] for i in row if i >= 0] for u, row in zip(users, top)}
    assert evaluated == {u: published[u] for u in evaluated}
    # and Recommender.recommend gives the same lists
    rec_items, _ = model.recommend(torch.as_tensor(users), k=cfg.recommend.k)
    assert [[items[i] for i in row if i >= 0] for row in rec_items.tolist()] == list(evaluated.values())
