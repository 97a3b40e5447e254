"""Fixtures for the model tests: the synthetic world and a small, fast training config."""
from __future__ import annotations

import pytest

from genre_core.config import GenreConfig, load_config
from tests.models.model_data import World, make_world

FAST = [
    "train.device=cpu", "train.bpr.dim=16", "train.bpr.epochs=40", "train.bpr.batch_size=64", "train.bpr.lr=0.02",
    "train.hybrid.dim=16", "train.hybrid.epochs=25", "train.hybrid.batch_size=32", "train.hybrid.max_history=16",
    "train.hybrid.target_window=4", "train.itemknn.neighbors=10",
    "train.sasrec.dim=16", "train.sasrec.epochs=30", "train.sasrec.batch_size=16", "train.sasrec.max_len=8",
    "train.sasrec.lr=0.01", "train.blend.members=[itemknn,popularity]",
    "train.split.cold_item_fraction=0", "train.split.cold_user_fraction=0", "train.split.test_last_n=2",
    "train.split.valid_fraction=0.2",
]


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture
def fast_cfg() -> GenreConfig:
    return load_config(None, FAST)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models train fastest on one thread (and much faster than on two when the CPU is shared)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
