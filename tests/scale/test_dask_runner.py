"""execution.runner=dask: the features and recommend flows run their partitions as Prefect tasks on a real Dask
cluster (2 workers) and write exactly what the local run writes."""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from flows.params import StageParams
from genre_core.config import load_config
from genre_core.execution import partition_bounds
from genre_core.paths import serving_path
from genre_core.warehouse import connect
from tests.features.feature_data import insert_items
from tests.recommend.conftest import make_world
from tests.scale.compare import top_k_differences

SIMILAR = "SELECT item_id, rank, similar_item_id, score FROM similar_items"
WORDS = "space war star jedi love romance detective murder police comedy dog robot planet girl boy city".split()


def test_partition_bounds_cover_everything_once() -> None:
    assert partition_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert partition_bounds(2, 5) == [(0, 1), (1, 2)]
    assert partition_bounds(0, 4) == []
    with pytest.raises(ValueError, match="partitions"):
        partition_bounds(3, 0)


def test_partitioned_features_in_process_are_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            tiny_bert: Path) -> None:
    """Partitions cut at batch boundaries of the extractor's order: the same batches, the same vectors."""
    from genre_core.features.partitioned import plan_features, run_features_partitioned
    from genre_core.features.pipeline import run_features

    rng = np.random.default_rng(1)
    items = pl.DataFrame({"item_id": [str(i) for i in range(23)], "title": None, "category": None,
                          "text": [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 15)))) for _ in range(23)],
                          "image_path": None})
    overrides = [f"features.text.model={tiny_bert}", "features.device=cpu", "features.text.batch_size=4",
                 "features.image.enabled=false"]
    out = {}
    for name in ("whole", "partitioned"):
        _home(tmp_path, name, monkeypatch)
        cfg = load_config(None, overrides)
        insert_items(cfg, items)
        if name == "partitioned":
            plan = plan_features(cfg)[0]
            slices = plan.slices(3)
            assert [(s.start, s.stop) for s in slices] == [(0, 8), (8, 16), (16, 23)]  # whole batches of 4
            assert [len(c.payload) for s in slices for c in s.contents] == sorted(
                (len(c.payload) for c in plan.todo), reverse=True)
            summary = run_features_partitioned(cfg, 3)
        else:
            summary = run_features(cfg, progress=False)
        out[name] = (summary["text"]["embedded"], _features(cfg)[0])
    assert out["whole"][0] == out["partitioned"][0] == 23
    assert out["whole"][1].equals(out["partitioned"][1])


def test_image_decoding_stays_in_process_inside_a_daemonic_worker(genre_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   tiny_vit: Path, poster_dir: Path) -> None:
    """A Dask worker is a daemonic process, which may not start DataLoader worker processes."""
    import genre_core.features.partitioned as part_mod

    cfg = load_config(None, [f"features.image.model={tiny_vit}", "features.device=cpu", "features.text.enabled=false",
                             "features.image.num_workers=2", "features.image.batch_size=4",
                             f"data_dir={poster_dir.parent}"])  # image paths must lie inside the data dir
    insert_items(cfg, pl.DataFrame({"item_id": ["1", "2"], "title": None, "text": None, "category": None,
                                    "image_path": [str(poster_dir / "1.jpg"), str(poster_dir / "2.jpg")]}))
    plan = part_mod.plan_features(cfg)[0]
    seen = []
    real = part_mod.build_extractor
    monkeypatch.setattr(part_mod, "build_extractor", lambda m, section, *a: seen.append(section.num_workers)
                        or real(m, section, *a))
    monkeypatch.setattr(part_mod, "in_daemon_process", lambda: True)
    done = part_mod.embed_partition(cfg, plan.slices(1)[0])
    assert seen == [0] and len(done.item_ids) == 2 and done.vectors.shape[0] == 2


def _params(home: Path, *overrides: str) -> StageParams:
    return StageParams(config=None, overrides=list(overrides))


def _home(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / name
    home.mkdir()
    monkeypatch.setenv("GENRE_HOME", str(home))
    return home


def _features(cfg) -> tuple[pl.DataFrame, pl.DataFrame]:
    with connect(cfg, read_only=True) as con:
        feats = con.sql("SELECT item_id, modality, model_id, content_hash, dim, vector FROM item_features "
                        "ORDER BY modality, item_id").pl()
        fails = con.sql("SELECT item_id, modality, model_id, content_hash, reason FROM feature_failures "
                        "ORDER BY modality, item_id").pl()
    return feats, fails


@pytest.mark.slow
def test_features_flow_on_dask_writes_what_the_local_run_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dask_address: str, prefect_harness: None,
    tiny_bert: Path, tiny_vit: Path, poster_dir: Path,
) -> None:
    from flows.features import features
    from genre_core.features.pipeline import run_features

    rng = np.random.default_rng(0)
    n = 30
    items = pl.DataFrame({
        "item_id": [str(i) for i in range(n)],
        "title": [f"movie {i}" for i in range(n)],
        "text": [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) for _ in range(n - 1)] + [None],
        "category": ["comedy|crime"] * n,
        "image_path": [str(poster_dir / f"{i % 8 + 1}.jpg") if i < 12 else None for i in range(n)],
    }).with_columns(pl.when(pl.col("item_id") == str(n - 1)).then(pl.lit(None)).otherwise(pl.col("title"))
                    .alias("title"))
    overrides = [f"features.text.model={tiny_bert}", f"features.image.model={tiny_vit}", "features.device=cpu",
                 "features.text.batch_size=4", "features.image.batch_size=4", "features.image.num_workers=0",
                 "features.text.template={title} {text}", f"data_dir={poster_dir.parent}"]  # posters inside the data dir
    results = {}
    for name, runner in (("local", "local"), ("dask", "dask")):
        _home(tmp_path, name, monkeypatch)
        cfg = load_config(None, overrides)
        insert_items(cfg, items)
        if runner == "local":
            summary = run_features(cfg, progress=False)
        else:
            summary = features(_params(tmp_path, *overrides, "execution.runner=dask", "execution.partitions=3",
                                       f"execution.dask.address={dask_address}"))
        results[name] = (summary, *_features(cfg))
    (s_local, f_local, x_local), (s_dask, f_dask, x_dask) = results["local"], results["dask"]
    for modality in ("text", "image"):
        for key in ("embedded", "skipped", "failed", "removed", "items", "dim", "model_id"):
            assert s_dask[modality][key] == s_local[modality][key], (modality, key)
        assert s_dask[modality]["partitions"] == 3
    assert s_local["text"]["embedded"] == n - 1 and s_local["image"]["failed"] == n - 12
    assert f_dask.drop("vector").equals(f_local.drop("vector"))
    np.testing.assert_allclose(np.array(f_dask["vector"].to_list()), np.array(f_local["vector"].to_list()),
                               rtol=0, atol=1e-5)
    assert x_dask.equals(x_local)


def _serving_rows(cfg, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(serving_path(cfg)), read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


@pytest.mark.slow
def test_recommend_flow_on_dask_publishes_the_local_top_k(
    genre_home: Path, dask_address: str, prefect_harness: None
) -> None:
    """The same champion scored locally (one partition) and on Dask (3 user + 3 item partitions)."""
    from flows.recommend import recommend
    from genre_core.models.pipeline import run_train
    from genre_core.recommend.pipeline import run_recommend

    world = make_world(genre_home, n_users=60, n_items=40, k=6, seed=3)
    cfg = world.cfg
    cfg.train.models = ["bpr"]
    cfg.train.register_model = "bpr"
    cfg.train.device = "cpu"
    cfg.train.refit = False
    cfg.train.bpr.epochs = 2
    cfg.execution.partitions = 3
    assert run_train(cfg, progress=False)["registered"]["champion"]
    local = run_recommend(cfg, progress=False)
    sim_local = _serving_rows(cfg, SIMILAR)
    overrides = [f"{k}={v}" for k, v in {
        "recommend.k": 6, "recommend.similar_k": 4, "recommend.block_users": 7, "recommend.device": "cpu",
        "train.models": "[bpr]", "train.register_model": "bpr", "execution.runner": "dask",
        "execution.partitions": 3, "execution.dask.address": dask_address}.items()]
    dask = recommend(StageParams(config=None, overrides=overrides))
    assert dask["partitions"] == 3
    for key in ("users", "cold_users", "warm_users", "cold_popularity", "rows", "similar_rows", "model_version"):
        assert dask[key] == local[key], key
    cols = "user_id, rank, item_id, score, because_item_id"
    recs = {run: _serving_rows(cfg, f"SELECT {cols} FROM recommendations_history WHERE run_id = '{s['run_id']}' "
                                    "ORDER BY user_id, rank") for run, s in (("local", local), ("dask", dask))}
    assert recs["dask"].height == len(world.all_users) * 6
    swapped, problems = top_k_differences(recs["local"], recs["dask"])
    assert problems == [] and swapped <= 2, (swapped, problems)
    assert recs["dask"].drop("score").filter(pl.col("because_item_id").is_null()).height == \
        recs["local"].drop("score").filter(pl.col("because_item_id").is_null()).height
    latest = _serving_rows(cfg, "SELECT DISTINCT run_id FROM recommendations")
    assert latest["run_id"].to_list() == [dask["run_id"]]
    sim = _serving_rows(cfg, SIMILAR)
    n_items = sim_local["item_id"].n_unique()
    assert sim.height == sim_local.height == n_items * 4 and (sim["item_id"] != sim["similar_item_id"]).all()
    swapped, problems = top_k_differences(sim_local, sim, id_col="item_id", item_col="similar_item_id")
    assert problems == [] and swapped <= 2, (swapped, problems)
