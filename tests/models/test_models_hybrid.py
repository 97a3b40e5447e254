"""Hybrid behaviour: cold items scored from content, fusion/loss variants, LLM features, early stopping."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genre_core.config import load_config
from genre_core.evaluation.evaluate import evaluate, make_eval_set
from genre_core.evaluation.split import make_split
from genre_core.models.base import Recommender
from genre_core.models.data import TrainData
from genre_core.models.registry import build_model
from tests.models.conftest import FAST
from tests.models.model_data import COLD, N_ITEMS, N_USERS, World, group_of_item


def fit(world: World, *overrides: str, data: TrainData | None = None) -> Recommender:
    cfg = load_config(None, [*FAST, *overrides])
    split = make_split(world.events, world.history, N_USERS, N_ITEMS, cfg.train.split, cfg.train.seed)
    model = build_model("hybrid", cfg.train, world.idmap)
    base = data if data is not None else world.data()
    model.fit(base.with_train(split.train), None, epochs=cfg.train.hybrid.epochs)
    return model


def cold_group_accuracy(model: Recommender) -> float:
    """Share of each user's top-3 cold items (among the 6) that belong to the user's taste group."""
    scores = model.score(torch.arange(N_USERS))[:, COLD]
    top = COLD[torch.topk(scores, 3, dim=1).indices.numpy()]
    return float((group_of_item(top) == (np.arange(N_USERS) % 2)[:, None]).mean())


def test_hybrid_recovers_planted_content_signal_for_cold_items(world: World) -> None:
    hybrid = fit(world)
    popularity = build_model("popularity", load_config(None, FAST).train, world.idmap)
    popularity.fit(world.data())
    assert hybrid.net.has_id[COLD].sum() == 0  # cold items have no id embedding: content alone
    assert cold_group_accuracy(hybrid) >= 0.9
    assert cold_group_accuracy(popularity) <= 0.6  # no signal: every cold item scores the same


@pytest.mark.parametrize("fusion, loss", [("sum", "bpr"), ("concat", "sampled_softmax"), ("gated", "softmax")])
def test_fusions_and_losses_train(world: World, fusion: str, loss: str) -> None:
    model = fit(world, f"train.hybrid.fusion={fusion}", f"train.hybrid.ranking_loss={loss}",
                "train.hybrid.negatives=8", "train.hybrid.history=mean")
    scores = model.score(torch.arange(N_USERS))
    assert torch.isfinite(scores).all()
    assert cold_group_accuracy(model) >= 0.75


def test_rating_regression_learns(world: World) -> None:
    cfg = load_config(None, [*FAST, "train.hybrid.rating_weight=1.0"])
    model = build_model("hybrid", cfg.train, world.idmap)
    report = model.fit(world.data(), None, epochs=12)
    first, last = report.history[0]["rating_loss"], report.history[-1]["rating_loss"]
    assert 0 < last < first


def test_configured_modality_must_exist(world: World) -> None:
    data = world.data()
    with pytest.raises(ValueError, match=r"\['audio'\].*no vectors"):
        build_model("hybrid", load_config(None, [*FAST, "train.hybrid.modalities=[text, audio]"]).train,
                    world.idmap).fit(data, None, epochs=1)


def test_llm_features_need_profiles_then_are_used(world: World, tmp_path: Path) -> None:
    cfg = load_config(None, [*FAST, "train.hybrid.use_llm_features=true", "train.hybrid.modalities=[text]"])
    data = world.data()
    feats = dict(data.item_features, text_llm=data.item_features["text"] * 0.5)
    masks = dict(data.item_feature_mask, text_llm=np.ones(N_ITEMS, bool))
    no_profile = TrainData(world.idmap, world.events, feats, masks)
    with pytest.raises(ValueError, match="profile"):
        build_model("hybrid", cfg.train, world.idmap).fit(no_profile, None, epochs=1)
    rng = np.random.default_rng(0)
    profiles = {"profile": rng.standard_normal((N_USERS, 5)).astype(np.float32)}
    full = TrainData(world.idmap, world.events, feats, masks, profiles, {"profile": np.ones(N_USERS, bool)})
    model = build_model("hybrid", cfg.train, world.idmap)
    model.fit(full, None, epochs=2)
    assert model.modalities == ["text", "text_llm"] and model.user_modalities == ["profile"]
    model.save(tmp_path / "h")
    again = Recommender.load(tmp_path / "h")
    torch.testing.assert_close(again.score(torch.arange(4)), model.score(torch.arange(4)))


def test_stored_llm_text_is_used_by_default_and_can_be_switched_off(world: World) -> None:
    """With modalities null the hybrid adds the enriched-text modality when it is stored (no profiles needed);
    ``use_llm_text=false`` leaves it out; without stored text_llm nothing changes."""
    data = world.data()
    feats = dict(data.item_features, text_llm=data.item_features["text"] * 0.5)
    masks = dict(data.item_feature_mask, text_llm=np.ones(N_ITEMS, bool))
    enriched = TrainData(world.idmap, world.events, feats, masks)
    on = build_model("hybrid", load_config(None, FAST).train, world.idmap)
    on.fit(enriched, None, epochs=1)
    assert "text_llm" in on.modalities and on.user_modalities == []
    off = build_model("hybrid", load_config(None, [*FAST, "train.hybrid.use_llm_text=false"]).train, world.idmap)
    off.fit(enriched, None, epochs=1)
    assert "text_llm" not in off.modalities
    plain = build_model("hybrid", load_config(None, FAST).train, world.idmap)
    plain.fit(data, None, epochs=1)
    assert "text_llm" not in plain.modalities


def test_early_stopping_restores_best_epoch(world: World) -> None:
    cfg = load_config(None, [*FAST, "train.hybrid.patience=2", "train.hybrid.epochs=60"])
    split = make_split(world.events, world.history, N_USERS, N_ITEMS, cfg.train.split, cfg.train.seed)
    model = build_model("hybrid", cfg.train, world.idmap)
    valid = make_eval_set("valid", split.valid)
    report = model.fit(world.data(split.train_inner), valid)
    assert len(report.history) < 60 and report.best_epoch is not None
    assert report.best_valid == pytest.approx(evaluate(model, valid, [10])["ndcg@10"])
    assert max(r["valid_ndcg@10"] for r in report.history) == pytest.approx(report.best_valid)
