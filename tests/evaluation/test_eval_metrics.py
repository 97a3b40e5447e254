"""Metric functions against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genre_core.evaluation import metrics as M

# user 0: relevant at ranks 1 and 3 of 4, 2 relevant in all; user 1: relevant at rank 4, 3 relevant in all
HITS = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
N_REL = np.array([2, 3])


def test_recall() -> None:
    np.testing.assert_allclose(M.recall_at_k(HITS, N_REL, 3), [1.0, 0.0])
    np.testing.assert_allclose(M.recall_at_k(HITS, N_REL, 4), [1.0, 1 / 3])
    np.testing.assert_allclose(M.recall_at_k(HITS, N_REL, 1), [0.5, 0.0])


def test_ndcg() -> None:
    # user 0 @3: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG (2 relevant) = 1 + 1/log2(3)
    # user 1 @4: DCG = 1/log2(5); IDCG (3 relevant) = 1 + 1/log2(3) + 1/log2(4)
    ideal0 = 1 + 1 / math.log2(3)
    ideal1 = 1 + 1 / math.log2(3) + 0.5
    np.testing.assert_allclose(M.ndcg_at_k(HITS, N_REL, 3), [1.5 / ideal0, 0.0])
    np.testing.assert_allclose(M.ndcg_at_k(HITS, N_REL, 4), [1.5 / ideal0, (1 / math.log2(5)) / ideal1])
    perfect = np.array([[1, 1, 0]], dtype=bool)
    np.testing.assert_allclose(M.ndcg_at_k(perfect, np.array([2]), 3), [1.0])


def test_hit_rate() -> None:
    np.testing.assert_allclose(M.hit_rate_at_k(HITS, 3), [1.0, 0.0])
    np.testing.assert_allclose(M.hit_rate_at_k(HITS, 4), [1.0, 1.0])


def test_reciprocal_rank() -> None:
    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.2, 0.2, 0.9, 0.2]])
    relevant = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    cand = np.ones_like(relevant)
    # user 0: one item above the relevant one -> rank 2; user 1: one above, two ties (half each) -> rank 3
    np.testing.assert_allclose(M.reciprocal_rank(scores, relevant, cand), [0.5, 1 / 3])
    cand[0, 0] = False  # the item above is a training item: excluded
    np.testing.assert_allclose(M.reciprocal_rank(scores, relevant, cand)[0], 1.0)


def test_auc() -> None:
    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.3, 0.3, 0.3, 0.3]])
    relevant = np.array([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=bool)
    cand = np.ones_like(relevant)
    # user 0: pairs (0.5 vs 0.9, 0.1) and (0.7 vs 0.9, 0.1) -> 2 of 4 correct; user 1: all ties -> 0.5
    np.testing.assert_allclose(M.auc(scores, relevant, cand), [0.5, 0.5])
    cand[0, 0] = False
    np.testing.assert_allclose(M.auc(scores, relevant, cand)[0], 1.0)
    all_relevant = np.array([[1, 1]], dtype=bool)
    np.testing.assert_allclose(M.auc(np.array([[0.1, 0.2]]), all_relevant, all_relevant), [1.0])


def test_coverage() -> None:
    top = np.array([[0, 1], [1, 2], [-1, -1]])
    assert M.coverage(top, 10) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: M.recall_at_k(HITS, np.array([2, 0]), 2), "at least one relevant"),
        (lambda: M.recall_at_k(HITS, N_REL, 5), "k=5"),
        (lambda: M.ndcg_at_k(HITS[0], N_REL, 2), "2-d"),
        (lambda: M.ndcg_at_k(HITS, np.array([1, 3]), 4), "more hits"),
        (lambda: M.auc(np.zeros((1, 2)), np.array([[1, 0]], bool), np.array([[0, 1]], bool)), "candidates"),
        (lambda: M.coverage(np.zeros((1, 1)), 0), "n_candidates"),
    ],
)
def test_bad_input_raises(call, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        call()
