"""The peer benchmark harness on a tiny synthetic world: peers behind GENRE's Recommender contract, the report,
and the command end to end (temp warehouse, temp MLflow store). Peers not installed are skipped with the reason.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.peers_models import PEERS, PeerSpec
from bench.peers_report import BAR, bar_verdict, collected_speed, render
from bench.peers_run import ModelResult, import_peer, run_peer
from genre_core.config import load_config
from genre_core.models.pipeline import Prepared, prepare
from tests.models.model_data import N_ITEMS, fill_warehouse, group_of_item, make_world

SPLIT = ["train.device=cpu", "train.split.test_last_n=2", "train.split.valid_fraction=0.2",
         "train.split.cold_item_fraction=0.1", "train.split.cold_user_fraction=0", "train.seed=3"]


# RecBole's peers train a small transformer / GRU with its own trainer: tens of seconds on a shared CPU
PEER_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if PEERS[n].package == "recbole" else n for n in PEERS]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def setup(genre_home: Path) -> tuple:
    cfg = load_config(None, SPLIT)
    fill_warehouse(cfg, make_world())
    return cfg, prepare(cfg)


def _need(name: str) -> None:
    reason = import_peer(PEERS[name])
    if reason:
        pytest.skip(reason)


def _spec(name: str) -> PeerSpec:
    """The peer's spec with its first configuration; VBPR's 1024-event batches would make ~1 step per epoch
    on this world's ~300 events, so it gets small batches here."""
    spec = PEERS[name]
    if name == "cornac-vbpr":
        return replace(spec, grid=({**spec.grid[0], "batch_size": 16},))
    if spec.package == "recbole":  # same reason: ~300 events, so small batches and a few more epochs
        return replace(spec, grid=({**spec.grid[0], "batch_size": 16, "epochs": 15, "lr": 0.005},))
    return replace(spec, grid=spec.grid[:1])


@pytest.mark.parametrize("name", PEER_PARAMS)
def test_peer_learns_the_planted_groups(name: str, setup: tuple) -> None:
    _need(name)
    cfg, prep = setup
    result = run_peer(_spec(name), cfg, prep, budget=1, threads=1)
    test = result.metrics["test"]
    # every test target is in the user's own group; ranking by group puts them all in the top 10, a random
    # order of the ~24 candidates would find well under half of them
    assert test["n_users"] > 30 and test["recall@10"] >= 0.75, test
    assert len(result.trials) == 1 and result.valid_ndcg10 is not None and result.fit_s > 0 and result.topk_s > 0
    cold = result.metrics["cold_item"]
    assert prep.split.cold_items.size and cold["n_users"] > 0
    if result.cold_capable:
        assert cold["recall@10"] is not None and 0.0 <= cold["recall@10"] <= 1.0
    else:
        assert cold["recall@10"] is None and cold["ndcg@10"] is None


@pytest.mark.parametrize("name", PEER_PARAMS)
def test_peer_scores_follow_the_contract(name: str, setup: tuple) -> None:
    _need(name)
    cfg, prep = setup
    spec = _spec(name)
    model = spec.cls(prep.data.idmap, dict(spec.grid[0]), seed=0, threads=1)
    model.fit(prep.data.with_train(prep.split.train))
    users = torch.arange(prep.data.idmap.n_users, dtype=torch.int64)
    scores = model.score(users)
    assert scores.shape == (prep.data.idmap.n_users, N_ITEMS) and scores.dtype == torch.float32
    unseen = ~model.known
    assert unseen[torch.as_tensor(prep.split.cold_items)].all()
    if model.cold_capable:
        assert torch.isfinite(scores).all()
    else:
        assert torch.isneginf(scores[:, unseen]).all() and torch.isfinite(scores[:, ~unseen]).all()
    number = np.array([int(i[1:]) for i in prep.data.idmap.items])  # index -> item "i<n>" -> n
    top, _ = model.recommend(users[:4], 5)
    for u, row in zip(range(4), top.tolist()):  # users "u0".."u3" are indices 0..3 (sorted as strings)
        assert not set(row) & set(model.user_history(torch.tensor([u]))[0].tolist())
    known = model.known.numpy()
    for u in range(prep.data.idmap.n_users):  # the planted groups: own-group items score higher on average
        same = group_of_item(number) == int(prep.data.idmap.users[u][1:]) % 2
        own, other = scores[u, known & same], scores[u, known & ~same]
        assert own.mean() > other.mean(), (u, own, other)


def _result(name: str, library: str, ndcg: float) -> ModelResult:
    slice_ = {"recall@10": 0.1, "recall@20": 0.2, "ndcg@10": ndcg, "ndcg@20": ndcg, "mrr": 0.3,
              "coverage@20": 0.5, "n_users": 10}
    cold = {k: (None if k != "n_users" else 5) for k in slice_}
    return ModelResult(name, library, {"k": 1}, {"test": slice_, "cold_item": cold, "cold_user": slice_},
                       1.0, 2.0, 0.1, 0.1)


def test_bar_verdict_and_speed_collection(tmp_path: Path) -> None:
    peer = _result("implicit-als", "implicit", 0.2)
    assert "NOT met" in bar_verdict([_result("hybrid", "genre", 0.2 * BAR - 1e-3), peer])[0]
    text, met = bar_verdict([_result("hybrid", "genre", 0.2 * BAR + 1e-3), peer])
    assert met and "**met**" in text
    assert bar_verdict([peer])[1] is None
    # the champion named by train.register_model is judged, not the hybrid
    both = [_result("hybrid", "genre", 0.2 * BAR + 1e-3), _result("blend", "genre", 0.2 * BAR - 1e-3), peer]
    text, met = bar_verdict(both, "blend")
    assert met is False and "Champion blend" in text
    assert "no GENRE champion (blend" in bar_verdict([both[0], peer], "blend")[0]  # never judges another model
    (tmp_path / "bench-topk.md").write_text("# Top-K\n\n## cpu\n\n| n | s |\n|---|---|\n| 1 | 2 |\n")
    lines, missing = collected_speed(tmp_path)
    assert missing == ["bench-features.md", "bench-llm.md"]
    text = "\n".join(lines)
    assert "### Top-K scoring scaling (from docs/bench-topk.md)" in text and "#### cpu" in text
    assert "# Top-K\n" not in text and "| 1 | 2 |" in text


@pytest.mark.slow  # ~10 s of it is creating the MLflow SQLite store (schema migrations)
def test_command_end_to_end(genre_home: Path, tmp_path: Path) -> None:
    _need("implicit-als")
    from bench.peers import main
    from genre_core.tracking import client

    cfg = load_config(None, SPLIT)
    fill_warehouse(cfg, make_world())
    (tmp_path / "bench-llm.md").write_text("# LLM\n\nllm table\n")
    out = tmp_path / "benchmarks.md"
    args = ["--models", "popularity,itemknn", "--peers", "implicit-als,implicit-itemknn", "--budget", "2",
            "--out", str(out), "--threads", "1", "--experiment", "bench-test", "--json", str(tmp_path / "r.json")]
    assert main(["--config", "conf/default.yaml", *args, *[a for s in SPLIT for a in ("--set", s)]]) == 0
    doc = out.read_text()
    for needle in ("## Quality", "## Speed", "## Protocol", "## Environment", "implicit-als", "itemknn",
                   "llm table", "docs/bench-features.md", "Bar not evaluated", "--budget 2"):
        assert needle in doc, needle
    assert "Partial report" not in doc  # the final rewrite
    c = client(cfg)
    exp = c.get_experiment_by_name("bench-test")
    runs = c.search_runs([exp.experiment_id])
    names = sorted(r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert names == ["implicit-als", "implicit-itemknn", "itemknn", "popularity"]
    als = next(r for r in runs if r.info.run_name == "implicit-als")
    assert 0.0 <= als.data.metrics["ndcg_at_10"] <= 1.0 and "cold_item.ndcg_at_10" not in als.data.metrics


def test_report_is_written_after_each_model_and_survives_a_crash(genre_home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.peers_run
    from bench.peers import main

    cfg = load_config(None, SPLIT)
    fill_warehouse(cfg, make_world())
    real, calls = bench.peers_run.run_genre, []

    def crash_on_second(name, *a, **kw):  # the second model dies, as a killed or failing long run would
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(name, *a, **kw)

    monkeypatch.setattr(bench.peers_run, "run_genre", crash_on_second)
    out, js = tmp_path / "benchmarks.md", tmp_path / "r.json"
    args = ["--models", "popularity,itemknn", "--peers", "", "--out", str(out), "--json", str(js), "--threads", "1",
            "--no-mlflow", *[a for s in SPLIT for a in ("--set", s)]]
    with pytest.raises(RuntimeError, match="interrupted"):
        main(["--config", "conf/default.yaml", *args])
    doc = out.read_text()
    assert "**Partial report**: 1 of 2 models finished" in doc and "| popularity |" in doc
    assert "| itemknn |" not in doc
    import json

    assert [r["name"] for r in json.loads(js.read_text())["results"]] == ["popularity"]
