"""Done-when of issue 12: an out-of-tree package adds a model, a dataset reader, a feature extractor and a
publish target (each one class + a config section, no edit under genre_core/), and the nightly flow runs on
the real Prefect engine with all four selected by config."""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from tests.plugins.conftest import write_toy_jsonl


def _config(tmp_path: Path, out: Path) -> Path:
    cfg = {
        "plugins": ["genre_testplugin"],
        "data_dir": str(tmp_path / "data"),
        "dataset": {"name": "toy-jsonl", "reader": "jsonl", "path": "toy", "tmdb_path": None, "fetch": None,
                    "jsonl": {"items": "items.jsonl", "events": "events.jsonl"}},
        "features": {"device": "cpu", "text": {"enabled": False}, "image": {"enabled": False},
                     "tags": {"extractor": "category-hash", "dim": 8}},
        "train": {"device": "cpu", "models": ["popularity", "cooc", "content"], "register_model": "cooc",
                  "cooc": {"window": 5}, "content": {"modalities": ["tags"]},
                  "split": {"cold_item_fraction": 0, "cold_user_fraction": 0}},
        "recommend": {"k": 5, "device": "cpu"},
        "tracking": {"registered_model": "toy-cooc"},
        "warehouse": {"publish_to": "parquet", "parquet": {"path": str(out)}},
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_plugin_sections_are_validated_by_the_plugin_classes(plugin_path, tmp_path: Path) -> None:
    from genre_core.config import ConfigError, load_config

    path = _config(tmp_path, tmp_path / "out" / "recs.parquet")
    cfg = load_config(path)
    assert type(cfg.train.section("cooc")).__name__ == "CoocConfig" and cfg.train.section("cooc").window == 5
    assert type(cfg.dataset.section()).__name__ == "JsonlConfig"
    assert type(cfg.warehouse.section()).__name__ == "ParquetTargetConfig"
    assert type(cfg.features.tags).__name__ == "CategoryHashConfig" and cfg.features.tags.dim == 8
    for override, message in [
        ("train.cooc.windoww=3", r"train\.cooc\.windoww: Extra inputs"),
        ("train.cooc.window=0", r"train\.cooc\.window: Input should be greater than or equal to 1"),
        ("features.tags.dim=1", r"features\.tags\.dim: Input should be greater than or equal to 2"),
        ("warehouse.parquet.paht=x", r"warehouse\.parquet\.paht: Extra inputs"),
        ("dataset.jsonl.itemz=x", r"dataset\.jsonl\.itemz: Extra inputs"),
        ("train.coocc.window=3", r"train\.coocc: unknown key .*models: .*cooc"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(path, [override])


@pytest.mark.slow  # the real Prefect engine (ephemeral server): ~100 s on the shared CPU
def test_nightly_flow_runs_the_plugin_model_reader_extractor_and_target(plugin_path, tmp_path: Path,
                                                                        genre_home: Path) -> None:
    from flows import FLOWS
    from flows.params import StageParams
    from genre_core.runtime import prepare_environment

    write_toy_jsonl(tmp_path / "data")
    out = tmp_path / "out" / "recs.parquet"
    prepare_environment()
    summary = FLOWS["nightly"](StageParams(config=str(_config(tmp_path, out))))
    stages = summary["stages"]
    assert stages["ingest"]  # the jsonl reader's batches went through validation into the warehouse
    assert stages["features"]["tags"]["embedded"] == 24 and stages["features"]["tags"]["dim"] == 8
    with duckdb.connect(str(genre_home / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM interactions").fetchall()[0][0] == 30 * 7
        assert con.sql("SELECT count(DISTINCT item_id) FROM item_features WHERE modality = 'tags'").fetchall()[0][0] == 24
    train = stages["train"]
    assert {"popularity", "cooc", "content"} <= set(train["models"])
    assert train["models"]["cooc"]["ndcg@10"] > train["models"]["popularity"]["ndcg@10"]
    assert train["registered"]["champion"]  # the plugin model is the registered champion (train.register_model)
    rec = stages["recommend"]
    assert rec["published_to"] == "parquet" and rec["model_name"] == "toy-cooc" and rec["target"] == str(out)
    recs = pl.read_parquet(out)
    assert recs["user_id"].n_unique() == 30 and recs.height == 30 * 5 and recs["run_id"].n_unique() == 1
    # a user's unseen items of their own genre come first (the cooc model learned the genres): at rank 1 the item
    # mostly has the user's genre (only 2 of each genre's 8 items are unseen, so deeper ranks must leave it)
    genre_match = recs.filter(pl.col("rank") == 1).with_columns(
        (pl.col("user_id").str.slice(1).cast(pl.Int64) % 3 == pl.col("item_id").str.slice(1).cast(pl.Int64) % 3)
        .alias("same"))["same"].mean()
    assert genre_match > 0.7


def test_a_target_without_explanations_publishes_the_run_and_warns(plugin_path, tmp_path, caplog) -> None:  # noqa: ANN001
    """``RecommendResult.explanations`` on a target that does not publish them: the recommendations are published,
    the explanations are left out with a warning naming the target."""
    import logging

    from genre_core.config import load_config
    from genre_core.recommend.merge import RecommendResult
    from genre_core.recommend.targets import publish_with_target
    from tests.recommend.conftest import run_record, synthetic_recs

    out_file = tmp_path / "latest.parquet"
    cfg = load_config(None, ["plugins=[genre_testplugin]", "warehouse.publish_to=parquet",
                             f"warehouse.parquet.path={out_file}"])
    recs = synthetic_recs(4, 2, 0)
    expl = recs.select("user_id", "rank", "item_id", "because_item_id").with_columns(
        explanation=pl.lit("because"), llm_backend=pl.lit("openai"), llm_model=pl.lit("stub"))
    with caplog.at_level(logging.WARNING, logger="genre_core.recommend.targets"):
        out = publish_with_target(cfg, RecommendResult(recs, None, 4, 0, explanations=expl), run_record("p1", 4, 2))
    assert out["published_to"] == "parquet" and pl.read_parquet(out_file).height == 8
    assert "'parquet' does not publish explanations: 8 explanation rows left out" in caplog.text
