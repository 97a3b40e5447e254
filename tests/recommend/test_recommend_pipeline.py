"""The recommend stage end to end on a tiny warehouse with a stand-in model that follows the Recommender contract."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import torch

from genre_core.paths import serving_path, warehouse_path
from genre_core.recommend.pipeline import recommend_with_model
from genre_core.warehouse import connect


def _serving(cfg, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(serving_path(cfg)), read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def _run(world, **kw) -> dict:
    return recommend_with_model(world.cfg, world.model, model_name="tiny", model_version="3",
                                model_run_id="abc", progress=False, **kw)


def test_every_user_gets_k_unseen_ranked_items(world) -> None:
    warehouse_before = hashlib.sha256(warehouse_path(world.cfg).read_bytes()).hexdigest()
    summary = _run(world)
    k = world.cfg.recommend.k
    assert summary["users"] == len(world.all_users) and summary["rows"] == len(world.all_users) * k
    assert summary["cold_users"] == len(world.cold_users)
    recs = _serving(world.cfg, "SELECT * FROM recommendations ORDER BY user_id, rank")
    assert recs.height == len(world.all_users) * k
    assert sorted(recs["user_id"].unique().to_list()) == world.all_users
    per_user = recs.group_by("user_id").agg(pl.col("rank"), pl.col("score"))
    for ranks, scores in per_user.select("rank", "score").iter_rows():
        assert ranks == list(range(1, k + 1))
        assert all(a >= b for a, b in zip(scores, scores[1:], strict=False))
    seen = {(u, i) for u, i, _ in world.interactions}
    assert not seen & set(recs.select("user_id", "item_id").iter_rows())
    assert recs["run_id"].n_unique() == 1 and recs["model_version"].unique().to_list() == ["3"]
    assert hashlib.sha256(warehouse_path(world.cfg).read_bytes()).hexdigest() == warehouse_before


def test_warm_scores_match_the_model_and_because_is_from_history(world) -> None:
    _run(world)
    recs = _serving(world.cfg, "SELECT * FROM recommendations")
    model, idmap = world.model, world.model.idmap
    history: dict[str, set[str]] = {}
    for u, i, _ in world.interactions:
        history.setdefault(u, set()).add(i)
    warm = recs.filter(~pl.col("user_id").is_in(world.cold_users))
    for user, item, score, because in warm.select("user_id", "item_id", "score", "because_item_id").iter_rows():
        u, j = idmap.user_index[user], idmap.item_index[item]
        assert score == pytest.approx(float(model.user_f[u] @ model.item_f[j]), rel=1e-5)
        assert because in history[user]
        best = max((h for h in history[user] if h in idmap.item_index),
                   key=lambda h: float(model.item_f[idmap.item_index[h]] @ model.item_f[j]))
        assert because == best
    cold = recs.filter(pl.col("user_id").is_in(world.cold_users))
    assert cold.height == len(world.cold_users) * world.cfg.recommend.k
    assert cold["because_item_id"].null_count() == cold.height


def test_popularity_cold_start_follows_interaction_counts(world) -> None:
    _run(world)
    counts: dict[str, int] = {}
    for _u, i in {(u, i) for u, i, _ in world.interactions}:  # distinct users per item
        counts[i] = counts.get(i, 0) + 1
    new2 = _serving(world.cfg, "SELECT item_id, score FROM recommendations WHERE user_id = 'new2' ORDER BY rank")
    expected = sorted((c for i, c in counts.items() if i in world.model.idmap.item_index), reverse=True)
    n_users = len(world.all_users)
    np.testing.assert_allclose(new2["score"].to_numpy(), np.array(expected[: world.cfg.recommend.k]) / n_users,
                               rtol=1e-6)
    new1 = _serving(world.cfg, "SELECT item_id FROM recommendations WHERE user_id = 'new1'")
    assert "i3" not in new1["item_id"].to_list()  # seen, though the user is unknown to the model


def test_content_cold_start_uses_content_vectors(world_factory) -> None:
    world = world_factory(cold_start="content")
    rng = np.random.default_rng(7)
    items = world.model.idmap.items + ["i_unknown"]
    vectors = {i: rng.standard_normal(6).astype(np.float32) for i in items}
    with connect(world.cfg) as con:
        con.executemany(
            "INSERT INTO item_features VALUES (?, 'text', 'm', 'h', 6, ?, current_timestamp)",
            [[i, v.tolist()] for i, v in vectors.items()],
        )
    summary = _run(world)
    assert summary["cold_content"] == 2 and summary["cold_popularity"] == 1  # new2 has no interactions
    unit = {i: v / np.linalg.norm(v) for i, v in vectors.items()}
    profile = unit["i3"] + unit["i_unknown"]  # new1's interactions, one of them unknown to the model
    profile /= np.linalg.norm(profile)
    candidates = [i for i in world.model.idmap.items if i != "i3"]
    expected = sorted(candidates, key=lambda i: -float(unit[i] @ profile))[: world.cfg.recommend.k]
    got = _serving(world.cfg, "SELECT item_id FROM recommendations WHERE user_id = 'new1' ORDER BY rank")
    assert got["item_id"].to_list() == expected


def test_model_without_item_vectors(world_factory, caplog: pytest.LogCaptureFixture) -> None:
    world = world_factory(with_vectors=False)
    with caplog.at_level(logging.WARNING):
        summary = _run(world)
    assert summary["similar_rows"] == 0 and "no item vectors" in caplog.text
    recs = _serving(world.cfg, "SELECT because_item_id FROM recommendations")
    assert recs["because_item_id"].null_count() == recs.height
    assert _serving(world.cfg, "SELECT count(*) AS n FROM similar_items")["n"][0] == 0


def test_similar_items_and_second_run_history(world) -> None:
    first = _run(world)
    world.model.user_f = world.model.user_f + 0.5 * torch.randn_like(world.model.user_f)
    second = _run(world)
    sim = _serving(world.cfg, "SELECT * FROM similar_items ORDER BY item_id, rank")
    n_items, sk = len(world.model.idmap.items), world.cfg.recommend.similar_k
    assert sim.height == n_items * sk and (sim["item_id"] != sim["similar_item_id"]).all()
    assert sim["run_id"].unique().to_list() == [second["run_id"]]
    runs = _serving(world.cfg, "SELECT run_id, rows, users, cold_users, k FROM recommendation_runs ORDER BY 1")
    assert runs["run_id"].to_list() == sorted([first["run_id"], second["run_id"]])
    assert runs["rows"].to_list() == [first["rows"]] * 2
    changes = _serving(world.cfg, "SELECT DISTINCT previous_run_id, run_id FROM recommendation_changes")
    assert changes.rows() == [(first["run_id"], second["run_id"])]


def test_empty_warehouse_is_an_error(genre_home: Path) -> None:
    from genre_core.config import GenreConfig

    cfg = GenreConfig()
    with connect(cfg):
        pass
    with pytest.raises(ValueError, match="no users"):
        recommend_with_model(cfg, object(), model_name="m", model_version="1", model_run_id="r", progress=False)


@pytest.mark.slow
def test_run_recommend_with_the_registered_champion(world) -> None:
    """The real path: `run_train` registers a champion in a temp MLflow store, `run_recommend` loads and uses it."""
    from genre_core.models.pipeline import run_train
    from genre_core.recommend.pipeline import run_recommend
    from genre_core.tracking import champion_info

    cfg = world.cfg
    cfg.train.models = ["bpr"]
    cfg.train.register_model = "bpr"
    cfg.train.device = "cpu"
    cfg.train.refit = False
    cfg.train.bpr.epochs = 2
    trained = run_train(cfg, progress=False)
    assert trained["registered"]["champion"], trained["registered"]
    summary = run_recommend(cfg, progress=False)
    champion = champion_info(cfg)
    assert champion is not None
    assert (summary["model_name"], summary["model_version"], summary["model_run_id"]) == (
        cfg.tracking.registered_model, champion["version"], champion["run_id"])
    recs = _serving(cfg, "SELECT user_id, item_id, because_item_id FROM recommendations")
    assert recs.height == len(world.all_users) * cfg.recommend.k == summary["rows"]
    assert not {(u, i) for u, i, _ in world.interactions} & set(recs.select("user_id", "item_id").iter_rows())
    warm = recs.filter(~pl.col("user_id").is_in(world.cold_users))
    assert warm["because_item_id"].null_count() == 0  # BPR gives item vectors
    runs = _serving(cfg, "SELECT model_name, model_version, model_run_id, status FROM recommendation_runs")
    assert runs.rows() == [(cfg.tracking.registered_model, champion["version"], champion["run_id"], "complete")]
