"""Per-impression metrics (MIND benchmark definitions) against hand-computed values, and impression grouping."""
from __future__ import annotations

import math

import numpy as np
import pytest

from genre_core.evaluation.impressions import (
    impression_auc,
    impression_metrics,
    impression_mrr,
    impression_ndcg,
    make_impression_set,
)
from genre_core.models.data import Interactions


def test_metrics_hand_values() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.5, 0.1])
    labels = np.array([False, True, False, True, False])  # ranks: 0.9 (skip), 0.8 (click), 0.5 (click), ...
    # pairs (click, skip): 0.8 beats 0.3 and 0.1 not 0.9 -> 2; 0.5 beats 0.3, 0.1 -> 2; 4 of 6
    assert impression_auc(scores, labels) == pytest.approx(4 / 6)
    assert impression_mrr(scores, labels) == pytest.approx((1 / 2 + 1 / 3) / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3)
    assert impression_ndcg(scores, labels, 5) == pytest.approx(dcg / ideal)
    assert impression_ndcg(scores, labels, 1) == 0.0
    assert impression_auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5  # ties count half
    m = impression_metrics(scores, labels)
    assert set(m) == {"auc", "mrr", "ndcg@5", "ndcg@10"} and m["ndcg@10"] == m["ndcg@5"]
    with pytest.raises(ValueError, match="clicked"):
        impression_auc(scores, np.zeros(5, bool))


def test_impressions_group_by_user_and_time() -> None:
    # user 0 at t=5: click 1, skip 2, skip 3; user 0 at t=9: click only (dropped); user 1 at t=5: skip 4, click 5
    user = np.array([0, 0, 0, 0, 1, 1, 1])
    item = np.array([1, 2, 3, 7, 4, 5, 6])
    ts = np.array([5, 5, 5, 9, 5, 5, 5])
    pos = np.array([True, False, False, True, False, True, False])
    neg = np.array([False, True, True, False, True, False, False])  # item 6 is ignored (neither role)
    imps = make_impression_set(Interactions(user, item, np.zeros(7, np.float32), ts, pos, neg))
    assert imps.users.tolist() == [0, 1] and imps.indptr.tolist() == [0, 3, 5]
    assert imps.items.tolist() == [1, 2, 3, 4, 5]
    assert imps.labels.tolist() == [True, False, False, False, True]
