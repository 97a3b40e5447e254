"""MMR diversity re-ranking: a toy case computed by hand, and the publish path with `recommend.diversity`."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from genre_core.evaluation.beyond import intra_list_diversity
from genre_core.recommend.diversity import centred_unit_rows, diversify, mmr_rerank
from genre_core.recommend.pipeline import recommend_with_model
from genre_core.ranking import TopK
from genre_core.warehouse import connect
from tests.recommend.test_recommend_pipeline import _serving

# items 0 (A) and 1 (B) point the same way, 2 (C) is orthogonal; model scores A 1.0 > B 0.9 > C 0.5
VECTORS = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
ITEMS = np.array([[1, 2, 0, -1]])  # the pool in any order, one empty slot
SCORES = np.array([[0.9, 0.5, 1.0, -np.inf]])


@pytest.mark.parametrize("weight, expected", [(0.0, [0, 1, 2]), (0.4, [0, 1, 2]), (0.5, [0, 2, 1]),
                                              (1.0, [0, 2, 1])])
def test_mmr_toy_case_by_hand(weight: float, expected: list[int]) -> None:
    # relevance min-max scaled in the pool: A 1, B (0.9 - 0.5) / 0.5 = 0.8, C 0. First pick: A (highest).
    # Second: B gains (1 - w) 0.8 - w * cos(A, B) = 0.8 - 1.8 w; C gains (1 - w) 0 - w * 0 = 0.
    # So B comes second for w < 0.8 / 1.8 = 0.444 and C for larger w; the last slot takes the one left.
    items, scores = mmr_rerank(ITEMS, SCORES, VECTORS, 3, weight)
    assert items.tolist() == [expected]
    assert scores[0] == pytest.approx([{0: 1.0, 1: 0.9, 2: 0.5}[i] for i in expected])  # the model's scores travel


def test_mmr_short_pool_and_bad_input() -> None:
    items, scores = mmr_rerank(np.array([[2, -1]]), np.array([[0.3, -np.inf]]), VECTORS, 2, 0.5)
    assert items.tolist() == [[2, -1]] and math.isinf(scores[0, 1])
    with pytest.raises(ValueError, match="weight"):
        mmr_rerank(ITEMS, SCORES, VECTORS, 2, 1.5)
    with pytest.raises(ValueError, match="k=5"):
        mmr_rerank(ITEMS, SCORES, VECTORS, 5, 0.5)


def test_weight_zero_keeps_the_model_order_and_vectors_are_centred() -> None:
    top = TopK(items=np.array([[4, 3, 2, 1]]), scores=np.array([[4.0, 3.0, 2.0, 1.0]], dtype=np.float32))
    out = diversify(top, np.eye(5, dtype=np.float32), 2, 0.0)
    assert out.items.tolist() == [[4, 3]]
    v = centred_unit_rows(np.array([[3.0, 1.0], [1.0, 1.0], [9.0, 9.0]]), np.array([True, True, False]))
    assert v.tolist() == [[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]  # mean (2, 1) of the items with a vector


def test_published_lists_are_mmr_reranked_pools(world_factory) -> None:
    world = world_factory(n_items=30, k=5)
    rng = np.random.default_rng(3)
    vectors = {i: rng.standard_normal(6).astype(np.float32) for i in world.model.idmap.items}
    with connect(world.cfg) as con:
        con.executemany("INSERT INTO item_features VALUES (?, 'text', 'm', 'h', 6, ?, current_timestamp)",
                        [[i, v.tolist()] for i, v in vectors.items()])

    def publish(weight: float) -> pl.DataFrame:
        world.cfg.recommend.diversity.weight = weight
        recommend_with_model(world.cfg, world.model, model_name="tiny", model_version="1", model_run_id="r",
                             progress=False)
        return _serving(world.cfg, "SELECT user_id, item_id FROM recommendations ORDER BY user_id, rank")

    plain, diverse = publish(0.0), publish(0.7)
    items = world.model.idmap.items
    raw = np.stack([vectors[i] / np.linalg.norm(vectors[i]) for i in items])  # stored vectors, L2-normalised
    unit = centred_unit_rows(raw, np.ones(len(items), bool))
    seen: dict[str, set[str]] = {}
    for u, i, _ in world.interactions:
        seen.setdefault(u, set()).add(i)
    ild = {"plain": [], "diverse": []}
    for u in [f"u{n}" for n in range(1, 40)]:  # warm users
        uidx = world.model.idmap.user_index[u]
        scores = world.model.score(torch.tensor([uidx]))[0].numpy().astype(np.float64)
        scores[[items.index(i) for i in seen[u] if i in items]] = -np.inf
        pool = np.argsort(-scores, kind="stable")[:15]  # k * pool_factor = 5 * 3
        expected, _ = mmr_rerank(pool[None], scores[pool][None], unit, 5, 0.7)
        got = diverse.filter(pl.col("user_id") == u)["item_id"].to_list()
        assert got == [items[j] for j in expected[0]], u
        for name, frame in (("plain", plain), ("diverse", diverse)):
            idx = [items.index(i) for i in frame.filter(pl.col("user_id") == u)["item_id"].to_list()]
            ild[name].append(intra_list_diversity(np.array([idx]), unit, 5)[0])
    assert np.mean(ild["diverse"]) > np.mean(ild["plain"])
