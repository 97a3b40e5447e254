"""The Recommender contract, run against every registered model on the synthetic world (known answers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genre_core.config import load_config
from genre_core.evaluation.split import make_split
from genre_core.models.base import IdMap, Recommender
from genre_core.models.registry import available_models, build_model, get_model_class
from tests.models.conftest import FAST
from tests.models.model_data import COLD, N_ITEMS, N_USERS, World, group_of_item, make_world

WORLD = make_world()


def _fit(name: str, world: World = WORLD) -> tuple[Recommender, np.ndarray]:
    cfg = load_config(None, FAST)
    split = make_split(world.events, world.history, N_USERS, N_ITEMS, cfg.train.split, cfg.train.seed)
    model = build_model(name, cfg.train, world.idmap)
    model.fit(world.data(split.train), None, epochs=cfg.train.hybrid.epochs if name == "hybrid" else
              cfg.train.sasrec.epochs if name == "sasrec" else None)
    return model, split.train.item


class RecommenderContract:
    """Mixin: subclasses set ``name`` and may override ``check_answer``."""

    name: str

    @pytest.fixture(scope="class")
    def fitted(self) -> Recommender:
        return _fit(self.name)[0]

    def check_answer(self, model: Recommender) -> None:
        """Default right answer: a user's top 3 unseen warm items come from the user's taste group."""
        users = torch.arange(N_USERS)
        scores = model.score(users).clone()
        scores[:, COLD] = float("-inf")  # judge warm items here; cold items have their own test
        from genre_core.ranking import rank_block
        top = rank_block(scores, 3, model.seen(users))[0].numpy()
        same = group_of_item(top) == (np.arange(N_USERS) % 2)[:, None]
        assert same.mean() >= 0.9, f"{self.name}: only {same.mean():.2f} of top-3 items match the user's group"

    def test_score_shape_dtype_device(self, fitted: Recommender) -> None:
        s = fitted.score(torch.tensor([0, 3, 5]))
        assert s.shape == (3, N_ITEMS) and s.dtype == torch.float32 and s.device == fitted.device
        assert torch.isfinite(s).all()

    def test_recommend_excludes_seen_sorted(self, fitted: Recommender) -> None:
        users = torch.arange(N_USERS)
        items, scores = fitted.recommend(users, k=5)
        assert items.shape == (N_USERS, 5) and scores.shape == (N_USERS, 5)
        assert (scores[:, :-1] >= scores[:, 1:]).all()
        for u, hist in zip(range(N_USERS), fitted.user_history(users)):
            assert not set(items[u].tolist()) & set(hist.tolist())
        with_seen, _ = fitted.recommend(users, k=N_ITEMS, exclude_seen=False)
        assert with_seen.shape == (N_USERS, N_ITEMS)

    def test_user_history_is_training_items(self, fitted: Recommender) -> None:
        cfg = load_config(None, FAST)
        split = make_split(WORLD.events, WORLD.history, N_USERS, N_ITEMS, cfg.train.split, cfg.train.seed)
        hist = fitted.user_history(torch.tensor([4]))[0]
        expected = split.train.item[split.train.user == 4]
        assert hist.tolist() == expected.tolist()  # time order kept

    def test_item_vectors(self, fitted: Recommender) -> None:
        v = fitted.item_vectors()
        assert v is None or (v.dim() == 2 and v.shape[0] == N_ITEMS and torch.isfinite(v).all())

    def test_save_load_roundtrip(self, fitted: Recommender, tmp_path: Path) -> None:
        fitted.save(tmp_path / "m")
        again = Recommender.load(tmp_path / "m")
        assert type(again) is type(fitted) and again.idmap.items == fitted.idmap.items
        users = torch.arange(N_USERS)
        torch.testing.assert_close(again.score(users), fitted.score(users))
        assert [h.tolist() for h in again.user_history(users)] == [h.tolist() for h in fitted.user_history(users)]
        assert isinstance(IdMap.load(tmp_path / "m" / "idmap.json"), IdMap)

    def test_right_answer(self, fitted: Recommender) -> None:
        self.check_answer(fitted)

    def test_deterministic_on_cpu(self, fitted: Recommender) -> None:
        again = _fit(self.name)[0]
        users = torch.arange(N_USERS)
        assert torch.equal(again.score(users), fitted.score(users))

    def test_bad_user_index(self, fitted: Recommender) -> None:
        with pytest.raises(ValueError, match="out of range"):
            fitted.score(torch.tensor([N_USERS]))
        with pytest.raises(ValueError, match="int64"):
            fitted.score(torch.tensor([0.0]))


class TestPopularity(RecommenderContract):
    name = "popularity"

    def check_answer(self, model: Recommender) -> None:
        # the most interacted item overall is a group hit (0 or 15); every user has seen their own hit,
        # so the top unseen item is the other group's hit
        items, _ = model.recommend(torch.arange(N_USERS), k=1)
        expected = np.where(np.arange(N_USERS) % 2 == 0, 15, 0)
        assert items[:, 0].tolist() == expected.tolist()


class TestItemKNN(RecommenderContract):
    name = "itemknn"


class TestBPR(RecommenderContract):
    name = "bpr"


class TestContent(RecommenderContract):
    name = "content"


class TestHybrid(RecommenderContract):
    name = "hybrid"


class TestSASRec(RecommenderContract):
    name = "sasrec"


class TestBlend(RecommenderContract):
    name = "blend"


def test_every_registered_model_runs_the_contract() -> None:
    covered = {cls.name for cls in RecommenderContract.__subclasses__()}
    assert set(available_models()) <= covered


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid: .*hybrid"):
        get_model_class("nope")


def test_load_rejects_wrong_class(tmp_path: Path) -> None:
    model, _ = _fit("popularity")
    model.save(tmp_path / "p")
    with pytest.raises(ValueError, match="popularity"):
        get_model_class("itemknn").load(tmp_path / "p")


def test_saved_params_load_into_the_typed_config(tmp_path: Path) -> None:
    """model.json params are validated into the class's Config on load: a model keeps its own settings, and a
    file whose params do not fit fails naming the file and the config class."""
    import json

    from genre_core.models.config import ItemKNNConfig

    model = build_model("itemknn", load_config(None, [*FAST, "train.itemknn.neighbors=7"]).train, WORLD.idmap)
    model.fit(WORLD.data(WORLD.events))
    model.save(tmp_path / "m")
    again = get_model_class("itemknn").load(tmp_path / "m")
    assert isinstance(again.config, ItemKNNConfig) and again.config.neighbors == 7
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    info["params"]["shrink"] = "lots"
    (tmp_path / "m" / "model.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"model\.json: params do not fit ItemKNNConfig"):
        get_model_class("itemknn").load(tmp_path / "m")
