"""bench.llm_ablation on a tiny synthetic home (real DuckDB file, GENRE's real split/fit/evaluate path):
table and JSON shape, paired deltas from one split per seed, absent features reported as not available."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from bench.llm_ablation import main, variant_config, with_control
from bench.llm_ablation_report import paired, summarise
from genre_core.config import load_config
from genre_core.models.registry import build_model
from genre_core.warehouse import connect
from tests.models.conftest import FAST
from tests.models.model_data import N_USERS, fill_warehouse, make_world

SPLIT = ["train.split.cold_user_fraction=0.25", "train.hybrid.epochs=2", "train.hybrid.patience=1",
         "train.cpu_threads=1"]
LLM_ITEMS = 20  # items 0..19 get a fake stored text_llm vector


def _home_with_text_llm(cfg) -> None:  # noqa: ANN001
    """The model tests' world in the warehouse, plus ``text_llm`` rows for some items (no profiles, no
    cold_gen, no text_llmenc)."""
    world = make_world()
    fill_warehouse(cfg, world)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(LLM_ITEMS):
        vec = (world.text[i] + 0.1 * rng.standard_normal(8)).astype(np.float32)
        rows.append((world.idmap.items[i], "text_llm", "fake-llm", hashlib.sha1(vec.tobytes()).hexdigest()[:12], 8,
                     vec.tolist()))
    with connect(cfg) as con:
        con.executemany("""INSERT INTO item_features (item_id, modality, model_id, content_hash, dim, vector,
                           created_at) VALUES (?, ?, ?, ?, ?, ?, now())""", rows)


@pytest.fixture
def home(genre_home):  # noqa: ANN001
    _home_with_text_llm(load_config(None, FAST))
    return genre_home


def test_two_seeds_two_variants_table_json_and_paired_deltas(home, tmp_path) -> None:  # noqa: ANN001
    out, js = tmp_path / "abl.md", tmp_path / "abl.json"
    sets = [a for s in [*FAST, *SPLIT] for a in ("--set", s)]
    rc = main(["--seeds", "1,2", "--variants", "none,text_llm,profile", "--models", "hybrid",
               "--out", str(out), "--json", str(js), *sets])
    assert rc == 0
    doc = json.loads(js.read_text())
    assert doc["finished"] and doc["coverage"]["text_llm"] == {"covered": LLM_ITEMS, "of": 30}
    assert doc["coverage"]["profile"] == {"covered": 0, "of": N_USERS}
    assert doc["unavailable"]["hybrid"] == {"profile": f"not available in this home (0 of {N_USERS} users covered)"}
    # 2 seeds x (none, +text_llm) + popularity per seed; profile never trained
    assert sorted((r["seed"], r["model"], r["variant"]) for r in doc["runs"]) == [
        (1, "hybrid", "none"), (1, "hybrid", "text_llm"), (1, "popularity", "popularity"),
        (2, "hybrid", "none"), (2, "hybrid", "text_llm"), (2, "popularity", "popularity")]
    hashes = {(r["seed"], r["variant"]): r["split_hash"] for r in doc["runs"]}
    for seed in (1, 2):  # every row of a seed on one split; the seeds are different splits
        assert len({h for (s, _), h in hashes.items() if s == seed}) == 1
    assert hashes[(1, "none")] != hashes[(2, "none")]
    for r in doc["runs"]:
        assert set(r["metrics"]) == {"NDCG@10", "Recall@20", "cold-item NDCG@10", "cold-user NDCG@10"}
        assert r["metrics"]["NDCG@10"] is not None and r["metrics"]["cold-user NDCG@10"] is not None
    assert [r["features"] for r in doc["runs"] if r["variant"] == "text_llm"] == [["text_llm"], ["text_llm"]]

    val = {(r["seed"], r["variant"]): r["metrics"]["NDCG@10"] for r in doc["runs"]}
    cell = summarise(doc["runs"], ["hybrid"], ["none", "text_llm"])["hybrid"]["text_llm"]["NDCG@10"]
    deltas = {s: val[(s, "text_llm")] - val[(s, "none")] for s in (1, 2)}
    assert cell["delta"]["seeds"] == pytest.approx(deltas)
    assert cell["delta"]["mean"] == pytest.approx(np.mean(list(deltas.values())))
    assert cell["delta"]["std"] == pytest.approx(np.std(list(deltas.values()), ddof=1))
    assert cell["helps"] == (all(d > 0 for d in deltas.values()) and cell["delta"]["mean"] > cell["delta"]["std"])

    md = out.read_text()
    assert "text_llm: 20 of 30 items" in md and "profile: 0 of 40 users" in md
    assert "| +profile | not available in this home (0 of 40 users covered) |" in md
    assert "| popularity (reference) |" in md and "helps beyond spread" in md
    assert md.count("| +text_llm |") == 3  # mean table, delta table, per-seed table

    # --resume keeps what the JSON holds and trains nothing more; another train config is refused
    before = js.read_text()
    assert main(["--seeds", "1,2", "--variants", "none,text_llm,profile", "--json", str(js), "--resume", *sets]) == 0
    assert json.loads(js.read_text())["runs"] == json.loads(before)["runs"]
    with pytest.raises(SystemExit, match="another train config"):
        main(["--seeds", "1,2", "--json", str(js), "--resume", *sets, "--set", "train.hybrid.epochs=3"])

    # a run whose split differs from its baseline's cannot be paired
    bad = [dict(r, split_hash="other") if (r["seed"], r["variant"]) == (2, "text_llm") else r for r in doc["runs"]]
    with pytest.raises(ValueError, match="different splits"):
        paired(bad, "hybrid", "text_llm", "NDCG@10")


def test_variant_configs_switch_exactly_one_feature(home) -> None:  # noqa: ANN001
    cfg = load_config(None, FAST)
    cov = {"text_llm": {"covered": 20, "of": 30}, "text_llmenc": {"covered": 0, "of": 30},
           "profile": {"covered": 5, "of": 40}, "cold_gen": {"covered": 3, "of": 40}}
    sec = {v: variant_config(cfg, "hybrid", v, 7, ["text", "image"], cov).train.hybrid
           for v in ("none", "text_llm", "profile", "cold_gen", "all")}
    assert all(not s.use_llm_text and not s.use_llm_features for s in sec.values())
    assert sec["none"].modalities == ["text", "image"] and not sec["none"].use_profiles
    assert sec["text_llm"].modalities == ["text", "image", "text_llm"]
    assert sec["profile"].use_profiles and not sec["profile"].use_cold_gen
    assert sec["profile"].modalities == ["text", "image"]
    assert sec["cold_gen"].use_cold_gen and not sec["cold_gen"].use_profiles
    assert sec["all"].modalities == ["text", "image", "text_llm"] and sec["all"].use_profiles \
        and sec["all"].use_cold_gen
    assert variant_config(cfg, "hybrid", "none", 7, ["text"], cov).train.seed == 7
    control = variant_config(cfg, "hybrid", "text_copy", 7, ["text", "image"], cov).train.hybrid
    assert control.modalities == ["text", "image", "text_copy"] and not control.use_profiles

    # the control modality: the plain text vectors on exactly the items with text_llm, zero elsewhere
    from genre_core.models.pipeline import prepare

    data = with_control(prepare(cfg)).data
    mask = data.item_feature_mask["text_copy"]
    assert mask.sum() == LLM_ITEMS and np.array_equal(mask, data.item_feature_mask["text_llm"])
    assert np.array_equal(data.item_features["text_copy"][mask], data.item_features["text"][mask])
    assert not data.item_features["text_copy"][~mask].any()


def test_use_profiles_alone_adds_the_user_tower_without_text_llm(home) -> None:  # noqa: ANN001
    from genre_core.models.pipeline import prepare

    cfg = load_config(None, [*FAST, "train.hybrid.use_profiles=true", "train.hybrid.use_llm_text=false",
                             "train.hybrid.epochs=1"])
    prep = prepare(cfg)
    with pytest.raises(ValueError, match="use_profiles is on but no user 'profile' vectors"):
        build_model("hybrid", cfg.train, prep.data.idmap).fit(prep.data.with_train(prep.split.train), None, epochs=1)
    with connect(cfg) as con:
        con.executemany("INSERT INTO user_features VALUES (?, 'profile', 'm', 'h', 3, ?, now())",
                        [(f"u{u}", [1.0, float(u % 2), 0.0]) for u in range(N_USERS)])
    prep = prepare(cfg)
    model = build_model("hybrid", cfg.train, prep.data.idmap)
    model.fit(prep.data.with_train(prep.split.train), None, epochs=1)
    assert model.user_modalities == ["profile"] and "text_llm" not in model.modalities
    assert torch.isfinite(model.score(torch.arange(N_USERS))).all()


def test_cold_gen_per_seed_coverage_warning_and_resume_across_seeds(home, tmp_path) -> None:  # noqa: ANN001
    cfg = load_config(None, FAST)
    with connect(cfg) as con:  # fake generator vectors (text space, 8 dims) for the first 6 users only
        con.executemany("INSERT INTO user_features VALUES (?, 'cold_gen', 'm', 'h', 8, ?, now())",
                        [(f"u{u}", [1.0 if k == u % 2 else 0.0 for k in range(8)]) for u in range(6)])
    js = tmp_path / "abl.json"
    sets = [a for s in [*FAST, *SPLIT] for a in ("--set", s)]
    assert main(["--seeds", "1", "--variants", "none,cold_gen", "--json", str(js), *sets]) == 0
    assert main(["--seeds", "2", "--variants", "none,cold_gen", "--json", str(js), "--resume",
                 "--out", str(tmp_path / "a.md"), *sets]) == 0
    doc = json.loads(js.read_text())
    assert doc["seeds"] == [1, 2] and doc["coverage"]["cold_gen"] == {"covered": 6, "of": N_USERS}
    assert sorted((r["seed"], r["variant"]) for r in doc["runs"]) == [
        (1, "cold_gen"), (1, "none"), (1, "popularity"), (2, "cold_gen"), (2, "none"), (2, "popularity")]
    cov = {r["seed"]: r["slice_coverage"] for r in doc["runs"]}
    assert all(c["cold_users"] == 10 and c["cold_users_with_cold_gen"] < 10 for c in cov.values())
    md = (tmp_path / "a.md").read_text()
    assert "**Warning**: `cold_gen` vectors cover only part of the cold users of seed 1" in md
    assert md.count("| +cold_gen |") == 3
