"""run_train end to end on a temp warehouse and a real MLflow SQLite store (no mocks)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from genre_core.config import load_config
from genre_core.evaluation.evaluate import evaluate
from genre_core.models.pipeline import prepare, run_train
from genre_core.tracking import client, load_champion, register_model, tracking_uri
from genre_core.warehouse import connect
from tests.models.conftest import FAST
from tests.models.model_data import fill_warehouse, make_world

SLICES = ["train.split.cold_item_fraction=0.2", "train.split.cold_item_min_interactions=2",
          "train.split.cold_user_fraction=0.1", "train.split.cold_user_history=2", "train.split.test_last_n=null",
          "train.bpr.epochs=10", "train.hybrid.epochs=8"]
@pytest.fixture(scope="module")
def genre_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One GENRE_HOME (and so one MLflow store, whose creation costs seconds) for this module's tests; each
    test uses its own warehouse file, experiment and registered model name."""
    home = tmp_path_factory.mktemp("genre_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENRE_HOME", str(home))
        yield home


KEYS = {"ndcg@10", "recall@10", "recall@20", "ndcg@20", "mrr", "hitrate@10", "auc", "coverage@10", "precision@10",
        "f1@10", "diversity@10", "novelty@10"}


def test_run_train_tracks_registers_and_skips(genre_home: Path) -> None:
    cfg = load_config(None, [*FAST, *SLICES, "train.models=[popularity, itemknn, bpr, content, hybrid]",
                             "train.register_model=hybrid"])
    world = make_world()
    fill_warehouse(cfg, world)
    assert tracking_uri(cfg) == f"sqlite:///{genre_home / 'mlflow' / 'mlflow.db'}"

    out = run_train(cfg, progress=False)
    assert out["skipped"] is False and set(out["models"]) == set(cfg.train.models)
    for name, m in out["models"].items():
        assert KEYS <= set(m) and KEYS <= set(m["cold_item"]) and KEYS <= set(m["cold_user"]), name
        assert m["cold_item"]["n_users"] > 0 and m["cold_user"]["n_users"] > 0
        assert m["fit_s"] >= 0 and m["run_id"]
    assert out["registered"] == {"version": "1", "champion": True, "reason": out["registered"]["reason"]}

    c = client(cfg)
    exp = c.get_experiment_by_name(cfg.tracking.experiment)
    assert Path(exp.artifact_location.removeprefix("file://")).is_relative_to(genre_home / "mlflow" / "artifacts")
    runs = c.search_runs([exp.experiment_id])
    assert len(runs) == 6  # a parent run + one run per model
    hybrid_run = c.get_run(out["models"]["hybrid"]["run_id"])
    assert hybrid_run.data.params["train.seed"] == "42" and hybrid_run.data.params["model"] == "hybrid"
    assert hybrid_run.data.metrics["ndcg_at_10"] == pytest.approx(out["models"]["hybrid"]["ndcg@10"])
    assert "cold_item.recall_at_10" in hybrid_run.data.metrics
    for key in ("precision_at_10", "f1_at_10", "diversity_at_10", "novelty_at_10", "rmse", "mae"):
        assert hybrid_run.data.metrics[key] == pytest.approx(out["models"]["hybrid"][key.replace("_at_", "@")])
    assert out["models"]["popularity"]["rmse"] is None  # no rating head: n/a, not logged
    assert "rmse" not in c.get_run(out["models"]["popularity"]["run_id"]).data.metrics
    curve = c.get_metric_history(hybrid_run.info.run_id, "search.valid_ndcg_at_10")
    assert len(curve) >= 2 and [m.step for m in curve] == sorted(m.step for m in curve)
    files = {a.path for a in c.list_artifacts(hybrid_run.info.run_id)} | {
        a.path for a in c.list_artifacts(hybrid_run.info.run_id, "model")}
    assert {"model/model.json", "model/idmap.json", "model/state.pt", "plots", "config.json"} <= files
    parent = c.get_run(out["parent_run_id"])
    assert "plots/model_comparison.png" in {a.path for a in c.list_artifacts(parent.info.run_id, "plots")}

    mv = c.get_model_version_by_alias(cfg.tracking.registered_model, "champion")
    assert str(mv.version) == "1" and mv.tags["promoted"] == "true" and "first champion" in mv.tags["champion_decision"]
    champ = load_champion(cfg)
    assert champ.name == "genre-recommender" and champ.version == "1" and champ.run_id == hybrid_run.info.run_id
    prep = prepare(cfg)
    again = evaluate(champ.model, prep.eval_sets["test"], [10, 20])
    assert again["ndcg@10"] == pytest.approx(out["models"]["hybrid"]["ndcg@10"])  # the very model evaluated
    items, _ = champ.model.recommend(torch.arange(3), k=5)
    assert items.shape == (3, 5)

    t0 = time.perf_counter()
    second = run_train(cfg, progress=False)
    assert second["skipped"] is True and "unchanged" in second["reason"] and second["fingerprint"] == out["fingerprint"]
    assert time.perf_counter() - t0 < 10

    # the decision when a new version does not win: recorded, alias unchanged
    worse = register_model(cfg, hybrid_run.info.run_id, {"ndcg@10": -1.0})
    assert worse["champion"] is False and worse["reason"].startswith("kept v1")
    assert str(c.get_model_version_by_alias(cfg.tracking.registered_model, "champion").version) == "1"
    assert c.get_model_version(cfg.tracking.registered_model, worse["version"]).tags["promoted"] == "false"


def test_new_data_retrains_and_alias_follows_the_metric(genre_home: Path) -> None:
    cfg = load_config(None, [*FAST, *SLICES, "train.models=[popularity, hybrid]", "train.register_model=hybrid",
                             "warehouse.path=second.duckdb",
                             "tracking.experiment=second", "tracking.registered_model=second-hybrid"])
    world = make_world()
    fill_warehouse(cfg, world)
    first = run_train(cfg, progress=False)
    with pytest.raises(LookupError, match="no 'champion'"):
        load_champion(load_config(None, [*FAST, "tracking.registered_model=other"]))
    with connect(cfg) as con:  # start again from an empty warehouse, then add more events
        for table in ("interactions", "item_features", "items", "users"):
            con.execute(f"DELETE FROM {table}")
    fill_warehouse(cfg, world, extra_events=40)
    second = run_train(cfg, progress=False)
    assert second["skipped"] is False and second["fingerprint"] != first["fingerprint"]
    reg = second["registered"]
    assert reg["version"] == "2"
    alias = str(client(cfg).get_model_version_by_alias(cfg.tracking.registered_model, "champion").version)
    new, old = second["models"]["hybrid"]["ndcg@10"], first["models"]["hybrid"]["ndcg@10"]
    assert reg["champion"] == (new > old) and alias == ("2" if new > old else "1")
