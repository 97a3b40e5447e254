"""The hybrid's rating head on the test split (RMSE/MAE), n/a for models without one, kept across save/load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genre_core.config import load_config
from genre_core.evaluation.evaluate import rating_errors
from genre_core.evaluation.split import make_split
from genre_core.models.base import Recommender
from genre_core.models.registry import build_model
from tests.models.conftest import FAST
from tests.models.model_data import N_ITEMS, N_USERS, World


def test_rating_head_errors_on_test_split_and_none_without_a_head(world: World, tmp_path: Path) -> None:
    cfg = load_config(None, [*FAST, "train.hybrid.rating_weight=1.0"])
    split = make_split(world.events, world.history, N_USERS, N_ITEMS, cfg.train.split, cfg.train.seed)
    hybrid = build_model("hybrid", cfg.train, world.idmap)
    hybrid.fit(world.data().with_train(split.train), None, epochs=12)
    test = split.test
    out = rating_errors(hybrid, test)
    pred = hybrid.predict_rating(torch.as_tensor(test.user), torch.as_tensor(test.item)).numpy()
    err = pred - test.value
    assert out["n_ratings"] == len(test) > 0
    assert out["rmse"] == pytest.approx(float(np.sqrt(np.mean(err ** 2))), rel=1e-5)
    assert out["mae"] == pytest.approx(float(np.mean(np.abs(err))), rel=1e-5)
    # ratings are 3..5 at random: a trained head lands near the spread of the values, far from a 0-5 guess
    assert out["rmse"] < 1.5 * float(np.std(test.value)) + 0.3
    hybrid.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert rating_errors(loaded, test)["rmse"] == pytest.approx(out["rmse"], rel=1e-5)
    popularity = build_model("popularity", cfg.train, world.idmap)
    popularity.fit(world.data().with_train(split.train))
    assert rating_errors(popularity, test) == {"rmse": None, "mae": None, "n_ratings": 0}


def test_no_rating_head_when_rating_weight_is_zero(world: World) -> None:
    cfg = load_config(None, [*FAST, "train.hybrid.rating_weight=0"])
    hybrid = build_model("hybrid", cfg.train, world.idmap)
    hybrid.fit(world.data(), None, epochs=1)
    assert hybrid.predict_rating(torch.tensor([0]), torch.tensor([1])) is None
