"""evaluate(): full-catalogue ranking excluding training items, candidate subsets, per-slice means."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from genre_core.evaluation.evaluate import evaluate, evaluate_per_user, make_eval_set, metric_names
from genre_core.models.base import IdMap, Recommender
from genre_core.models.data import Interactions


class FixedScores(Recommender):
    """A stand-in model with a given score matrix and histories."""

    name = "fixed-test"

    def __init__(self, scores: np.ndarray, histories: list[list[int]]) -> None:
        super().__init__(IdMap([f"u{u}" for u in range(scores.shape[0])], [f"i{i}" for i in range(scores.shape[1])]))
        self.matrix = torch.as_tensor(scores, dtype=torch.float32)
        indptr = np.cumsum([0] + [len(h) for h in histories])
        self.set_histories(indptr, np.array([i for h in histories for i in h], dtype=np.int64))

    def fit(self, data: Any, valid: Any = None, **_: Any) -> None:
        return None

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.matrix[self._check_users(user_idx)]

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        return None


def targets(pairs: list[tuple[int, int]]) -> Interactions:
    u, i = (np.array(c, dtype=np.int64) for c in zip(*pairs))
    n = len(pairs)
    return Interactions(u, i, np.ones(n, np.float32), np.arange(n, dtype=np.int64), np.ones(n, bool))


def test_training_items_are_excluded_and_metrics_match_hand_values() -> None:
    # user 0 saw item 0 (scored highest); its target item 2 is then ranked first among candidates
    scores = np.array([[9.0, 1.0, 8.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    model = FixedScores(scores, [[0], []])
    es = make_eval_set("t", targets([(0, 2), (1, 1)]))
    out = evaluate(model, es, [1, 2])
    # user 0: hit at rank 1 -> recall@1 = 1, mrr 1; user 1: target ranked 3rd of 4 -> recall@2 = 0, mrr 1/3
    assert out["recall@1"] == pytest.approx(0.5)
    assert out["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    # auc user 0: target 8 vs negatives {1, 0} -> 1; user 1: target 1 vs {0, 2, 3} -> 1/3
    assert out["auc"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["coverage@1"] == pytest.approx(2 / 4)  # top-1 lists: {2} and {3}
    assert out["n_users"] == 2
    assert set(metric_names([1, 2])) <= set(out)


def test_candidates_restrict_ranking() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 2.0]])
    model = FixedScores(scores, [[]])
    es = make_eval_set("cold", targets([(0, 3), (0, 0)]), candidates=np.array([2, 3]))
    per_user, top = evaluate_per_user(model, es, [1])
    assert top.tolist() == [[2]]  # item 0 is not a candidate, nor a target any more
    np.testing.assert_allclose(per_user["recall@1"], [0.0])
    np.testing.assert_allclose(per_user["mrr"], [0.5])


def test_users_whose_targets_were_all_seen_are_dropped_and_empty_slice_gives_none() -> None:
    model = FixedScores(np.zeros((2, 3)), [[1], []])
    out = evaluate(model, make_eval_set("t", targets([(0, 1)])), [10])
    assert out["n_users"] == 0 and out["ndcg@10"] is None and out["coverage@10"] is None


def test_wrong_score_shape_is_reported() -> None:
    model = FixedScores(np.zeros((1, 3)), [[]])
    model.matrix = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="shape"):
        evaluate(model, make_eval_set("t", targets([(0, 1)])), [1])
