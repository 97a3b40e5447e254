"""A blend trained in the same pass as its members reuses their fits instead of fitting them again.

The reuse must be invisible in the result: the same weights and the same test metrics as a blend that fits its
members itself, with the member models the pass already trained (the very objects) inside it.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from genre_core.config import load_config
from genre_core.models.blend import Blend, FittedMember
from genre_core.models.pipeline import fit_and_evaluate, prepare, run_train
from tests.models.conftest import FAST
from tests.models.model_data import fill_warehouse, make_world

CFG = [*FAST, "train.bpr.epochs=12", "train.blend.members=[bpr, popularity]", "train.blend.cold_max_history=0"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("genre_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENRE_HOME", str(home))
        yield home


def test_blend_reuses_the_members_fits_with_the_same_result(home: Path) -> None:
    cfg = load_config(None, [*CFG, "train.models=[bpr, popularity, blend]", "train.register_model=null"])
    fill_warehouse(cfg, make_world())
    prep = prepare(cfg)
    cpu = torch.device("cpu")

    fitted: dict[str, FittedMember] = {}
    bpr, _, _ = fit_and_evaluate("bpr", cfg, prep, cpu, fitted=fitted)
    fit_and_evaluate("popularity", cfg, prep, cpu, fitted=fitted)
    assert fitted["bpr"].inner is not None and fitted["bpr"].final is bpr and fitted["bpr"].best_epoch
    assert fitted["popularity"].inner is None and fitted["popularity"].final is not None  # fitted on train only
    reused, m_reused, _ = fit_and_evaluate("blend", cfg, prep, cpu, fitted=fitted)
    assert isinstance(reused, Blend)
    assert m_reused["fit"]["reused"] == ["bpr:inner", "bpr:final", "popularity:final"]
    assert reused.members["bpr"] is bpr  # the pass's own model, not a refit
    assert reused.scores_cold_items is False  # neither bpr nor popularity scores items unseen in training

    fresh, m_fresh, _ = fit_and_evaluate("blend", cfg, prep, cpu)  # fits both members twice itself
    assert m_fresh["fit"]["reused"] == []
    assert reused.weights == fresh.weights
    for key in ("ndcg@10", "recall@20"):
        assert m_reused[key] == pytest.approx(m_fresh[key], abs=1e-6), key
    users = torch.arange(6)
    torch.testing.assert_close(reused.score(users), fresh.score(users), rtol=1e-4, atol=1e-4)


def test_run_train_trains_the_blend_last_and_reuses(home: Path) -> None:
    cfg = load_config(None, [*CFG, "train.models=[blend, popularity, bpr]", "train.register_model=blend",
                             "tracking.experiment=blend-reuse", "tracking.registered_model=genre-blend-reuse",
                             "warehouse.path=reuse.duckdb"])
    fill_warehouse(cfg, make_world())
    out = run_train(cfg, progress=False)
    assert list(out["models"]) == ["popularity", "bpr", "blend"]  # members first, whatever the listed order
    assert out["models"]["blend"]["fit"]["reused"] == ["bpr:inner", "bpr:final", "popularity:final"]
    assert out["registered"]["champion"] is True
