"""Splits: per-user temporal and global cuts, validation carved the same way, cold slices, no leakage."""
from __future__ import annotations

import numpy as np
import pytest

from genre_core.evaluation.split import global_time_mask, make_split, user_temporal_mask
from genre_core.models.config import SplitConfig
from genre_core.models.data import Interactions


def events(rows: list[tuple[int, int, int]]) -> Interactions:
    u, i, t = (np.array(c, dtype=np.int64) for c in zip(*rows))
    return Interactions(u, i, np.full(len(rows), 4.0, np.float32), t, np.ones(len(rows), bool))


def grid(n_users: int = 20, n_items: int = 30, per_user: int = 10, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            rows.append((u, int(i), 1000 * u + 10 * k + int(rng.integers(0, 5))))
    return events(rows)


def test_user_temporal_last_fraction_at_least_one() -> None:
    # user 0: 10 events -> 2 held out (the two latest); user 1: 2 events -> 1; user 2: 1 event -> none
    ev = events([(0, i, 100 - i) for i in range(10)] + [(1, 0, 5), (1, 1, 3)] + [(2, 3, 1)])
    held = user_temporal_mask(ev, np.zeros(len(ev), bool), 0.2, None)
    assert sorted(ev.item[held & (ev.user == 0)].tolist()) == [0, 1]  # ts 100 and 99
    assert ev.item[held & (ev.user == 1)].tolist() == [0]
    assert not held[ev.user == 2].any()


def test_user_temporal_last_n_and_history_rows_stay() -> None:
    ev = events([(0, i, i) for i in range(6)])
    history = np.array([True, True, False, False, False, False])
    held = user_temporal_mask(ev, history, 0.2, 3)
    assert ev.item[held].tolist() == [3, 4, 5]
    held = user_temporal_mask(ev, history, 0.2, 10)  # never everything: one event stays
    assert not held[:2].any() and held[2:].all()


def test_global_time_cut() -> None:
    ev = events([(u, u, t) for u, t in enumerate(range(0, 100, 10))])
    held = global_time_mask(ev, np.zeros(len(ev), bool), 0.3)
    assert ev.ts[held].tolist() == [70, 80, 90]


def test_no_test_event_precedes_training_of_its_user() -> None:
    ev = grid()
    sp = make_split(ev, np.zeros(len(ev), bool), 20, 30, SplitConfig(cold_item_fraction=0, cold_user_fraction=0), 1)
    for u in range(20):
        assert sp.train.ts[sp.train.user == u].max() <= sp.test.ts[sp.test.user == u].min()
        assert sp.train_inner.ts[sp.train_inner.user == u].max() <= sp.valid.ts[sp.valid.user == u].min()
    assert len(sp.train) == len(sp.train_inner) + len(sp.valid)
    assert len(sp.train) + len(sp.test) == len(ev)


def test_cold_items_and_users() -> None:
    ev = grid(n_users=40, n_items=30, per_user=12)
    cfg = SplitConfig(cold_item_fraction=0.2, cold_item_min_interactions=3, cold_user_fraction=0.1,
                      cold_user_history=2)
    sp = make_split(ev, np.zeros(len(ev), bool), 40, 30, cfg, seed=7)
    assert sp.cold_items.size == 6 and sp.cold_users.size == 4
    for part in (sp.train, sp.train_inner, sp.valid, sp.test, sp.test_cold_user):
        assert not np.isin(part.item, sp.cold_items).any()  # held out of training entirely
    assert np.isin(sp.test_cold_item.item, sp.cold_items).all()
    assert len(sp.test_cold_item) == np.isin(ev.item, sp.cold_items).sum()  # all their events go to the slice
    for u in sp.cold_users:
        kept = sp.train.ts[sp.train.user == u]
        assert kept.size == 2 and kept.max() <= sp.test_cold_user.ts[sp.test_cold_user.user == u].min()
    assert not np.isin(sp.test.user, sp.cold_users).any()


def test_seeded_and_deterministic() -> None:
    ev = grid(n_users=40, n_items=30, per_user=12)
    cfg = SplitConfig(cold_item_fraction=0.2, cold_user_fraction=0.1, cold_item_min_interactions=1)
    a = make_split(ev, np.zeros(len(ev), bool), 40, 30, cfg, seed=3)
    b = make_split(ev, np.zeros(len(ev), bool), 40, 30, cfg, seed=3)
    c = make_split(ev, np.zeros(len(ev), bool), 40, 30, cfg, seed=4)
    assert np.array_equal(a.cold_items, b.cold_items) and np.array_equal(a.test.item, b.test.item)
    assert not np.array_equal(a.cold_items, c.cold_items)


def test_global_split_new_users_and_items_are_cold() -> None:
    rows = [(u, i, 10 * u + i) for u in range(5) for i in range(4)] + [(9, 1, 1000), (0, 7, 1001)]
    ev = events(rows)
    cfg = SplitConfig(kind="global_time", test_fraction=0.15, valid_fraction=0, cold_item_fraction=0,
                      cold_user_fraction=0)
    sp = make_split(ev, np.zeros(len(ev), bool), 10, 8, cfg, seed=0)
    assert 9 in sp.cold_users.tolist() and 7 in sp.cold_items.tolist()
    assert (9, 1) in set(zip(sp.test_cold_user.user.tolist(), sp.test_cold_user.item.tolist()))
    assert 7 in sp.test_cold_item.item.tolist() and 7 not in sp.test.item.tolist()


def test_nothing_to_train_raises() -> None:
    ev = events([(0, 0, 1)])
    ev = Interactions(ev.user, ev.item, ev.value, ev.ts, np.zeros(1, bool))
    with pytest.raises(ValueError, match="no positive training"):
        make_split(ev, np.zeros(1, bool), 1, 1, SplitConfig(cold_item_fraction=0, cold_user_fraction=0), 0)


def test_leave_one_out_validation_is_the_previous_event() -> None:
    # test_last_n: 1 + valid_last_n: 1 -> test = each user's last event, validation = the one before it
    ev = grid(n_users=12, per_user=6)
    cfg = SplitConfig(test_last_n=1, valid_last_n=1, valid_fraction=0.0, cold_item_fraction=0,
                      cold_user_fraction=0)
    s = make_split(ev, np.zeros(len(ev), bool), 12, 30, cfg, seed=0)
    order = np.lexsort((ev.ts, ev.user))
    for u in range(12):
        items = ev.item[order][ev.user[order] == u]
        assert s.test.item[s.test.user == u].tolist() == [items[-1]]
        assert s.valid.item[s.valid.user == u].tolist() in ([items[-2]], [])  # [] if new in validation
        assert s.train_inner.item[s.train_inner.user == u].tolist() == items[:-2].tolist()
    assert len(s.valid) >= 10
