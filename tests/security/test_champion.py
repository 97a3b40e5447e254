"""Point 8: the champion stays loadable. Files are fsynced and the model loads back before the alias moves,
an unloadable model is never registered, and training is not skipped when the champion's files are gone;
`train.models` without `train.register_model` fails at load (test_errors.py::test_config_mistakes_fail_at_load)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genre_core.config import load_config
from tests.security.shop import one_error_line


@pytest.fixture(scope="module")
def trained(ingested):
    """The module's copy of the ingested shop, trained once."""
    shop, _ = ingested
    proc = shop.genre("train", "--direct", "--json")
    assert proc.returncode == 0, proc.stderr
    return shop, json.loads(proc.stdout)


def _cfg(shop, monkeypatch):
    monkeypatch.setenv("GENRE_HOME", str(shop.home))
    monkeypatch.setenv("GENRE_DATA_DIR", str(shop.data))
    return load_config(shop.config)


@pytest.mark.slow
def test_model_files_are_synced_and_loaded_before_the_alias_moves(trained, monkeypatch) -> None:
    import genre_core.champion_guard as guard
    from mlflow import MlflowClient

    from genre_core.tracking import register_model

    shop, summary = trained
    cfg = _cfg(shop, monkeypatch)
    events: list[str] = []
    real_fsync, real_alias = guard.os.fsync, MlflowClient.set_registered_model_alias
    monkeypatch.setattr(guard.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias",
                        lambda self, *a, **k: (events.append("alias"), real_alias(self, *a, **k))[1])
    metrics = dict(summary["models"]["popularity"])
    metrics["ndcg@10"] = (metrics.get("ndcg@10") or 0) + 1.0  # beats the champion: the alias must move
    reg = register_model(cfg, metrics["run_id"], metrics)
    assert reg["champion"] and "alias" in events
    assert events.index("alias") > 0 and events[: events.index("alias")].count("fsync") >= 2  # files + folders


@pytest.mark.slow
def test_an_unloadable_model_is_never_registered(trained, monkeypatch, tmp_path: Path) -> None:
    from genre_core.tracking import RunLogger, champion_info, register_model

    shop, _ = trained
    cfg = _cfg(shop, monkeypatch)
    before = champion_info(cfg)
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json", encoding="utf-8")
    run = RunLogger(cfg, "broken-model")
    run.artifacts(broken, "model")
    run.end()
    with pytest.raises(RuntimeError, match="cannot be loaded back"):
        register_model(cfg, run.run_id, {"ndcg@10": 99.0})
    assert champion_info(cfg)["version"] == before["version"]


@pytest.mark.slow
def test_training_is_not_skipped_when_the_champion_cannot_be_loaded(trained, monkeypatch) -> None:
    from genre_core.tracking import champion_info

    shop, _ = trained
    cfg = _cfg(shop, monkeypatch)
    skipped = shop.genre("train", "--direct", "--json")
    assert skipped.returncode == 0 and json.loads(skipped.stdout)["skipped"] is True  # unchanged inputs: skip
    champ = champion_info(cfg)
    folders = [p for p in (shop.home / "mlflow" / "artifacts").rglob("model") if champ["run_id"] in str(p)]
    assert folders
    for f in folders:
        shutil.rmtree(f)  # the champion's files are lost (disk cleanup, a bad copy, ...)
    rec = shop.genre("recommend", "--direct")
    assert rec.returncode == 1 and one_error_line(rec).startswith("genre recommend: error:")
    again = shop.genre("train", "--direct", "--json")
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["skipped"] is False and out["registered"]["champion"] is True  # retrained and a loadable champion
    assert shop.genre("recommend", "--direct").returncode == 0
