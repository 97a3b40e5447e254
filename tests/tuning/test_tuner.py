"""`genre tune` on the tiny synthetic world, with a real DuckDB warehouse and a real MLflow store: trials nested
under a parent run, plots logged, best parameters stored and picked up by `genre train` (--set wins), the
nightly reusing fresh results, and the test split never touched."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import genre_core.models.training as training
import genre_core.tuning.objective as objective
from genre_core.config import load_config, parse_override
from genre_core.models.pipeline import prepare, run_train
from genre_core.tracking import client
from genre_core.tuning.objective import valid_only, validation_view
from genre_core.tuning.store import load_tuned
from genre_core.tuning.tuner import run_tune
from tests.models.conftest import FAST
from tests.models.model_data import fill_warehouse, make_world

pytestmark = pytest.mark.slow  # seconds of work, but MLflow store creation and the torch import dominate on a loaded CPU

# the small, fast settings come from a config file, not --set: parameters given with --set are not searched
TUNE = ["tune.models=[itemknn, bpr]", "tune.n_trials=3", "tune.pruner_startup_trials=1", "tune.pruner_warmup_epochs=1"]


def _file_config(path: Path) -> Path:
    """FAST (plus three models, short BPR runs) as a YAML config file."""
    data: dict = {}
    for ov in [*FAST, "train.models=[popularity, itemknn, bpr]", "train.register_model=null", "train.bpr.epochs=5",
               "train.bpr.patience=2"]:
        parts, value = parse_override(ov)
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("genre_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENRE_HOME", str(home))
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield home
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def conf(home: Path) -> Path:
    return _file_config(home / "conf.yaml")


@pytest.fixture(scope="module")
def tuned(conf: Path) -> dict:
    cfg = load_config(conf, TUNE)
    fill_warehouse(cfg, make_world())
    return run_tune(cfg, progress=False)


def test_tune_runs_trials_as_nested_mlflow_runs_and_stores_the_best(tuned: dict, conf: Path) -> None:
    cfg = load_config(conf, TUNE)
    assert set(tuned["models"]) == {"itemknn", "bpr"} and tuned["skipped"] is False
    stored = load_tuned(cfg)
    for name, summary in tuned["models"].items():
        assert summary["trials"] == 3 and summary["complete"] + summary["pruned"] + summary["failed"] == 3
        assert summary["best_value"] >= summary["baseline_value"]  # trial 0 is the configured parameters
        row = stored[name]
        assert row.params == summary["params"] and row.trial_number == summary["best_trial"]
        assert row.value == pytest.approx(summary["best_value"]) and row.data_rows == 320
        assert set(row.params) == set(cfg.tune.space(name))
    c = client(cfg)
    parent = tuned["parent_run_id"]
    exp = c.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    studies = c.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert {r.data.tags["genre.model"] for r in studies} == {"itemknn", "bpr"}
    bpr = next(r for r in studies if r.data.tags["genre.model"] == "bpr")
    trials = c.search_runs([exp], f"tags.mlflow.parentRunId = '{bpr.info.run_id}'")
    assert len(trials) == 3 and {r.data.tags["genre.trial_state"] for r in trials} <= {"COMPLETE", "PRUNED"}
    curve = c.get_metric_history(trials[0].info.run_id, "epoch.valid_ndcg_at_10")
    assert len(curve) >= 1  # per-epoch validation values, reported to the pruner too
    plots = {a.path for a in c.list_artifacts(bpr.info.run_id, "plots")}
    assert plots == {"plots/optimisation_history.png", "plots/param_importances.png"}


def test_train_picks_up_tuned_params_and_set_wins(tuned: dict, conf: Path) -> None:
    cfg = load_config(conf, [*TUNE, "train.itemknn.neighbors=7", "train.skip_unchanged=false"])
    best = tuned["models"]["itemknn"]["params"]
    out = run_train(cfg, progress=False)
    src = out["param_sources"]["itemknn"]
    assert src["neighbors"] == "--set" and src["alpha"].startswith("tuned (trial ")
    assert src["recency_half_life"].startswith("tuned") and out["param_sources"]["bpr"]["lr"].startswith("tuned")
    run = client(cfg).get_run(out["models"]["itemknn"]["run_id"]).data.params
    assert run["train.itemknn.neighbors"] == "7"
    assert float(run["train.itemknn.alpha"]) == pytest.approx(best["alpha"])
    assert float(run["train.bpr.lr"]) == pytest.approx(tuned["models"]["bpr"]["params"]["lr"])
    off = run_train(load_config(conf, [*TUNE, "tune.use_tuned=false", "train.skip_unchanged=false"]), progress=False)
    assert off["param_sources"] == {}


def test_nightly_reuses_fresh_results_and_retunes_when_data_grew(tuned: dict, conf: Path) -> None:
    cfg = load_config(conf, [*TUNE, "tune.enabled=true", "tune.when_data_grew=0.1", "tune.models=[itemknn]"])
    again = run_tune(cfg, progress=False, force=False)
    assert again["skipped"] is True and "reusing parameters tuned" in again["reason"]
    assert run_tune(load_config(conf, TUNE), progress=False, force=False)["reason"] == "tune.enabled is false"
    from genre_core.warehouse import connect
    with connect(cfg) as con:  # 40 more events: +12.5% > 10%
        con.execute("""INSERT INTO interactions SELECT event_key || '-new', user_id, item_id, event_type, value,
                       ts + INTERVAL 1 YEAR, is_history, 'new' FROM interactions LIMIT 40""")
    grown = run_tune(cfg, progress=False, force=False)
    assert grown["skipped"] is False and "grew by 12.5%" in grown["reasons"]["itemknn"]
    assert load_tuned(cfg)["itemknn"].data_rows == 360


def test_the_test_split_is_never_touched(tuned: dict, conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(conf, [*TUNE, "tune.n_trials=2", "warehouse.path=untouched.duckdb"])
    fill_warehouse(cfg, make_world(seed=1))  # its own warehouse: the other tests add events
    prep = prepare(cfg)
    view = validation_view(prep)
    assert len(view.split.test) == len(view.split.test_cold_item) == len(view.split.test_cold_user) == 0
    assert set(view.eval_sets) == {"valid"} and len(prep.split.test) > 0
    with pytest.raises(RuntimeError, match="only the validation split"):
        valid_only(prep.eval_sets["test"])
    test_pairs = set(zip(prep.split.test.user.tolist(), prep.split.test.item.tolist()))
    seen: list[str] = []

    def spy(real):  # records every evaluation the tuner makes and what the model was trained on
        def wrapper(model, es, *args, **kwargs):
            seen.append(es.name)
            ptr, ind = model.hist_indptr.numpy(), model.hist_indices.numpy()
            trained = {(u, int(i)) for u in range(len(ptr) - 1) for i in ind[ptr[u]:ptr[u + 1]]}
            assert not trained & test_pairs, "a model was fitted on test events"
            return real(model, es, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(objective, "evaluate", spy(objective.evaluate))
    monkeypatch.setattr(training, "evaluate", spy(training.evaluate))
    out = run_tune(cfg, progress=False)
    assert out["models"]["bpr"]["complete"] >= 1 and out["models"]["itemknn"]["complete"] == 2
    assert seen and set(seen) == {"valid"}
    assert np.isfinite(out["models"]["bpr"]["best_value"])


def test_sasrec_tunes_from_its_own_class_space(tuned: dict, conf: Path) -> None:
    """The model added by issue 13a declares its tune_space on its class; two short trials store its best point."""
    over = ["tune.models=[sasrec]", "tune.n_trials=2", "tune.max_epochs=2", "tune.pruner_startup_trials=1",
            "tune.spaces.sasrec.dim={type: categorical, choices: [16, 32]}", "tune.spaces.sasrec.max_len=null"]
    cfg = load_config(conf, over)
    summary = run_tune(cfg, progress=False)["models"]["sasrec"]
    assert summary["trials"] == 2 and summary["complete"] >= 1, summary
    row = load_tuned(cfg, ["sasrec"])["sasrec"]
    assert set(row.params) == set(cfg.tune.space("sasrec")) and "max_len" not in row.params
    assert row.params["dim"] in (16, 32) and row.params["dim"] % row.params["heads"] == 0


def test_a_blend_in_train_models_gets_its_members_tuned_params(tuned: dict, conf: Path) -> None:
    """`train.models: [blend]` alone: the blend builds itemknn from train.itemknn, so the tuned values apply."""
    from genre_core.tuning.apply import apply_tuned

    cfg = load_config(conf, [*TUNE, "train.models=[blend]", "train.blend.members=[itemknn, popularity]"])
    out, sources = apply_tuned(cfg)
    best = load_tuned(cfg, ["itemknn"])["itemknn"].params  # the stored row (an earlier test re-tunes itemknn)
    assert set(sources) == {"itemknn"} and sources["itemknn"]["alpha"].startswith("tuned (trial ")
    assert out.train.itemknn.alpha == pytest.approx(best["alpha"])
