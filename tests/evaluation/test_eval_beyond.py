"""Precision/F1@K, intra-list diversity, novelty and rating errors against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genre_core.evaluation import metrics as M
from genre_core.evaluation.beyond import intra_list_diversity, list_metrics, mae, novelty, rmse
from genre_core.evaluation.evaluate import evaluate, make_eval_set
from tests.evaluation.test_eval_evaluate import FixedScores, targets

HITS = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
N_REL = np.array([4, 1, 1])
# item 0 = (1, 0), item 1 = (0, 1), item 2 = (1, 1), item 3 has no content vector
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
COUNTS = np.array([6, 2, 0, 0])  # training interactions: total 8


def test_precision_and_f1_match_hand_values() -> None:
    assert M.precision_at_k(HITS, 4) == pytest.approx([0.5, 0.0, 0.25])
    assert M.precision_at_k(HITS, 1) == pytest.approx([1.0, 0.0, 0.0])
    # user 0, k=3: P = 2/3, R = 2/4 -> F1 = 2PR/(P+R) = 4/7; user 2: P = 1/3, R = 1 -> 1/2
    assert M.f1_at_k(HITS, N_REL, 3) == pytest.approx([4 / 7, 0.0, 1 / 2])
    with pytest.raises(ValueError, match="k=5"):
        M.precision_at_k(HITS, 5)


def test_intra_list_diversity_is_mean_pairwise_cosine_distance() -> None:
    top = np.array([[0, 1, 2], [2, 0, -1], [0, 3, -1], [3, -1, -1]])
    out = intra_list_diversity(top, VECTORS, 3)
    # [0, 1, 2]: d(0,1) = 1, d(0,2) = d(1,2) = 1 - 1/sqrt(2) -> (3 - sqrt(2)) / 3
    assert out[0] == pytest.approx((3 - math.sqrt(2)) / 3)
    assert out[1] == pytest.approx(1 - 1 / math.sqrt(2))  # the empty slot is left out
    assert math.isnan(out[2]) and math.isnan(out[3])  # item 3 has no vector: no pair left
    assert intra_list_diversity(top, VECTORS, 2)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="item index 7"):
        intra_list_diversity(np.array([[7, 0]]), VECTORS, 2)


def test_novelty_is_mean_self_information_of_training_popularity() -> None:
    top = np.array([[0, 1], [2, -1], [-1, -1]])
    out = novelty(top, COUNTS, 2)
    # -log2(6/8) = 0.415..., -log2(2/8) = 2; item 2 never seen counts as once: -log2(1/8) = 3
    assert out[0] == pytest.approx((-math.log2(6 / 8) + 2.0) / 2)
    assert out[1] == pytest.approx(3.0)
    assert math.isnan(out[2])
    with pytest.raises(ValueError, match="all counts are 0"):
        novelty(top, np.zeros(4), 2)


def test_rating_errors_use_finite_pairs_only() -> None:
    pred, obs = np.array([3.0, 4.0, np.nan]), np.array([4.0, 2.0, 5.0])
    assert rmse(pred, obs) == pytest.approx(math.sqrt(2.5))
    assert mae(pred, obs) == pytest.approx(1.5)
    assert rmse(np.array([np.nan]), np.array([1.0])) is None
    with pytest.raises(ValueError, match="same length"):
        mae(np.zeros(2), np.zeros(3))


def test_list_metrics_average_users_with_a_value() -> None:
    top = np.array([[0, 1], [0, 3]])
    out = list_metrics(top, [2], VECTORS, None)
    assert out == {"diversity@2": pytest.approx(1.0), "novelty@2": None}  # user 1 has no pair: left out


def test_evaluate_reports_precision_f1_diversity_and_novelty_of_the_ranked_lists() -> None:
    # user 0 saw item 0; its top-2 among {1, 2, 3} is [2, 1]; user 1's top-2 is [3, 2]
    scores = np.array([[9.0, 1.0, 8.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    model = FixedScores(scores, [[0], []])
    out = evaluate(model, make_eval_set("t", targets([(0, 2), (1, 1)])), [2], item_vectors=VECTORS,
                   popularity=COUNTS)
    assert out["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert out["f1@2"] == pytest.approx((2 * 0.5 * 1 / 1.5 + 0) / 2)
    assert out["diversity@2"] == pytest.approx(1 - 1 / math.sqrt(2))  # user 1's list [3, 2] has no pair
    assert out["novelty@2"] == pytest.approx(((3 + 2) / 2 + (3 + 3) / 2) / 2)
