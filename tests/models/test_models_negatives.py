"""Explicit negatives: the events rules, the hybrid's impression-aware term, and a synthetic impression log.

The log: 60 users; items 0-9 are the ones users click in impressions (C), 10-19 are shown in the same
impressions and skipped (S), 20-39 are background. Every user first reads 4 background items and 3 S items
(so S is popular among the positives), then has 4 impressions of 2 C + 3 S items at one time each. The last
impression of each user is the test set, ranked as in the MIND benchmark.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from genre_core.evaluation.impressions import evaluate_impressions, make_impression_set
from genre_core.events import EventRule, classify
from genre_core.models.base import IdMap
from genre_core.models.config import TrainConfig
from genre_core.models.data import Interactions, TrainData
from genre_core.models.negatives import NegativeWindows, pairwise_negative_loss
from genre_core.models.registry import build_model

C, S, B = np.arange(0, 10), np.arange(10, 20), np.arange(20, 40)


def impression_log(seed: int = 0, n_users: int = 60, n_imp: int = 4) -> tuple[IdMap, Interactions, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []  # user, item, ts, clicked
    for u in range(n_users):
        t = 1000
        for i in [*rng.choice(B, 4, replace=False), *rng.choice(S, 3, replace=False)]:
            rows.append((u, i, t, 1))
            t += 10
        for _ in range(n_imp):
            t += 100
            rows += [(u, i, t, 1) for i in rng.choice(C, 2, replace=False)]
            rows += [(u, i, t, 0) for i in rng.choice(S, 3, replace=False)]
    a = np.array(rows, dtype=np.int64)
    frame = pl.DataFrame({"event_type": np.where(a[:, 3] == 1, "click", "skip"), "value": a[:, 3].astype(float)})
    pos, neg, w = classify(frame, {"click": EventRule(role="positive"), "skip": EventRule(role="negative")})
    ev = Interactions(a[:, 0], a[:, 1], a[:, 3].astype(np.float32), a[:, 2], pos, neg, w)
    idmap = IdMap([f"u{i}" for i in range(n_users)], [f"i{i}" for i in range(40)])
    text = rng.standard_normal((40, 8)).astype(np.float32)  # content carries no signal here
    return idmap, ev, text


def _fit(skips: str, negative_weight: float) -> tuple[object, Interactions]:
    """Train the hybrid on all but each user's last impression; ``skips``: negative (new) or positive (the old
    "every event is a like")."""
    idmap, ev, text = impression_log()
    last = np.zeros(idmap.n_users, np.int64)
    np.maximum.at(last, ev.user, ev.ts)
    test_mask = ev.ts == last[ev.user]
    train, test = ev.subset(~test_mask), ev.subset(test_mask)
    if skips == "positive":
        train = Interactions(train.user, train.item, train.value, train.ts, np.ones(len(train), bool))
    tc = TrainConfig(seed=0)
    tc.hybrid.batch_size, tc.hybrid.dim, tc.hybrid.negative_weight = 32, 32, negative_weight
    model = build_model("hybrid", tc, idmap)
    model.fit(TrainData(idmap, train, {"text": text}, {"text": np.ones(40, bool)}), None, epochs=15)
    return model, test


@pytest.fixture(scope="module")
def with_negatives() -> tuple[object, Interactions]:
    return _fit("negative", 1.0)


def test_skips_as_negatives_rank_skipped_below_clicked(with_negatives) -> None:
    model, test = with_negatives
    imps = make_impression_set(test)
    assert len(imps) == 60  # one test impression per user, 2 clicks + 3 skips each
    m = evaluate_impressions(model, imps)
    assert m["auc"] >= 0.9, m
    # the old semantics (every event a like) learns the skipped items as likes: no better than chance
    old, _ = _fit("positive", 1.0)
    m_old = evaluate_impressions(old, imps)
    assert m_old["auc"] < 0.7 and m["auc"] - m_old["auc"] > 0.25, (m, m_old)


def test_negative_term_pushes_skipped_items_down(with_negatives) -> None:
    """Same data, the impression-aware term off: the clicked-minus-skipped score gap is smaller."""
    model, test = with_negatives
    off, _ = _fit("negative", 0.0)
    users = torch.arange(60)

    def gap(m) -> float:  # noqa: ANN001
        with torch.inference_mode():
            s = m.score(users).numpy()
        return float(s[:, C].mean() - s[:, S].mean())

    assert gap(model) > gap(off) > 0, (gap(model), gap(off))


def test_negative_windows_gather_by_user_and_time() -> None:
    ev = Interactions(np.array([0, 0, 0, 1, 1]), np.array([5, 6, 7, 8, 9]), np.zeros(5, np.float32),
                      np.array([10, 20, 30, 20, 20]), np.zeros(5, bool), np.ones(5, bool),
                      np.array([1, 1, 2, 1, 1], np.float32))
    nw = NegativeWindows(ev, n_users=3)
    items, w, valid = nw.gather(torch.tensor([0, 1, 2, 0]), torch.tensor([15, 0, 0, 31]),
                                torch.tensor([30, 20, 99, 40]), max_n=2)
    assert valid.tolist() == [[True, True], [True, True], [False, False], [False, False]]
    assert items[0].tolist() == [6, 7] and w[0].tolist() == [1.0, 2.0]
    assert sorted(items[1].tolist()) == [8, 9]


def test_pairwise_negative_loss_hand_value() -> None:
    pos = torch.tensor([[2.0, 0.0]])
    neg = torch.tensor([[1.0, 5.0]])
    loss = pairwise_negative_loss(pos, torch.tensor([[True, False]]), neg, torch.tensor([[1.0, 2.0]]),
                                  torch.tensor([[True, False]]))
    assert loss.item() == pytest.approx(float(np.log1p(np.exp(-1.0))))  # only the pair (2.0, 1.0), weight 1
    none = pairwise_negative_loss(pos, torch.tensor([[False, False]]), neg, torch.ones(1, 2), torch.ones(1, 2, dtype=bool))
    assert none.item() == 0.0


def test_events_rules_classify_thresholds_and_history() -> None:
    frame = pl.DataFrame({"event_type": ["rating", "rating", "rating", "click", "click", "view"],
                          "value": [5.0, 3.0, None, 1.0, 1.0, 1.0],
                          "is_history": [False, False, False, False, True, False]})
    rules = {"rating": EventRule(min_value=4, below="negative", weight=2.0), "click": EventRule(),
             "history": EventRule(role="ignore"),
             "default": EventRule(role="ignore")}
    pos, neg, w = classify(frame, rules)
    assert pos.tolist() == [True, False, True, True, False, False]
    assert neg.tolist() == [False, True, False, False, False, False]
    assert w.tolist() == [2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="min_value only applies"):
        EventRule(role="negative", min_value=1)
