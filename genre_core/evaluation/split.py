"""Leakage-free splits: per-user temporal or global time cut, validation carved the same way, cold slices.

Everything here works in index space on ``Interactions``. Models only ever see ``Split.train`` (or
``train_inner`` while early stopping), so popularity counts, co-occurrences and content profiles are built
from the training period alone.

Slices:
* overall: test events of warm users on warm items (per-user temporal: each user's last fraction / last N);
* cold_item: every event on items held out of training entirely (a seeded random ``cold_item_fraction`` of
  items with at least ``cold_item_min_interactions`` positives; with a global cut, also items first seen after
  it); ranked among the cold items;
* cold_user: the later events of users who keep only their first ``cold_user_history`` events in training
  (a seeded random ``cold_user_fraction``; with a global cut, also users first seen after it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genre_core.models.config import SplitConfig
from genre_core.models.data import Interactions


@dataclass(frozen=True)
class Split:
    """Index-space split; all test parts hold positive events only (``test_events``: with negatives too)."""

    train: Interactions  # what the final model is fitted on (train_inner + valid)
    train_inner: Interactions  # training part while early stopping
    valid: Interactions  # validation targets (positives), carved from train like test from all
    test: Interactions  # overall targets: warm users x warm items
    test_cold_item: Interactions  # targets on cold items
    test_cold_user: Interactions  # targets of cold users on warm items
    cold_items: np.ndarray  # int64 item indices held out of training
    cold_users: np.ndarray  # int64 user indices with (almost) no training history
    test_events: Interactions | None = None  # the overall test part with every role (impression evaluation)

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), "train_inner": len(self.train_inner), "valid": len(self.valid),
                "test": len(self.test), "test_cold_item": len(self.test_cold_item),
                "test_cold_user": len(self.test_cold_user), "cold_items": int(self.cold_items.size),
                "cold_users": int(self.cold_users.size)}


def _time_order(ev: Interactions) -> np.ndarray:
    """Positions sorted by (user, ts, original position): a stable per-user timeline."""
    return np.lexsort((np.arange(len(ev)), ev.ts, ev.user))


def _rank_within_user(ev: Interactions, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each event (original positions): its 0-based rank in its user's timeline and that user's count."""
    u = ev.user[order]
    counts = np.bincount(u, minlength=int(u.max()) + 1 if u.size else 0)
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(ev), dtype=np.int64)
    rank[order] = np.arange(len(ev)) - starts[u]
    return rank, counts[ev.user]


def user_temporal_mask(
    ev: Interactions, history: np.ndarray, fraction: float, last_n: int | None
) -> np.ndarray:
    """bool [n]: the events that go to the held-out part, per user: the last ``last_n`` events (if set) or the
    last ``max(1, round(fraction * n_u))``, never all of them (a user keeps at least one training event).
    History rows (``history`` bool [n]) always stay in training and do not count."""
    held = np.zeros(len(ev), dtype=bool)
    idx = np.flatnonzero(~history)
    if idx.size == 0:
        return held
    sub = ev.subset(idx)
    rank, n_u = _rank_within_user(sub, _time_order(sub))
    n_hist = np.bincount(ev.user[history], minlength=int(ev.user.max()) + 1)[sub.user] if history.any() else 0
    if last_n is not None:
        n_out = np.full(len(sub), last_n, dtype=np.int64)
    else:
        n_out = np.maximum(1, np.round(fraction * n_u).astype(np.int64))
    n_out = np.minimum(n_out, n_u + n_hist - 1)  # keep one training event per user
    held[idx] = rank >= n_u - n_out
    return held


def global_time_mask(ev: Interactions, history: np.ndarray, fraction: float) -> np.ndarray:
    """bool [n]: events after the time cut at the (1 - fraction) quantile of non-history timestamps."""
    real = ev.ts[~history]
    if real.size == 0:
        return np.zeros(len(ev), dtype=bool)
    cut = np.quantile(real, 1.0 - fraction, method="lower")
    return (~history) & (ev.ts > cut)


def _pick(rng: np.random.Generator, pool: np.ndarray, fraction: float, total: int) -> np.ndarray:
    n = min(int(round(fraction * total)), pool.size)
    return np.sort(rng.choice(pool, size=n, replace=False)) if n > 0 else np.zeros(0, dtype=np.int64)


def make_split(
    events: Interactions, history: np.ndarray, n_users: int, n_items: int, cfg: SplitConfig, seed: int
) -> Split:
    """Split all events (index space) per ``cfg``; ``history`` (bool [n]) marks rows that always train.

    Deterministic for a given seed. Raises ValueError when nothing is left to train or to test on.
    """
    if len(history) != len(events):
        raise ValueError("history mask and events differ in length")
    rng = np.random.default_rng(seed)
    pos = events.positive
    item_count = np.bincount(events.item[pos], minlength=n_items)
    user_count = np.bincount(events.user[pos & ~history], minlength=n_users)
    cold_items = _pick(rng, np.flatnonzero(item_count >= cfg.cold_item_min_interactions),
                       cfg.cold_item_fraction, int((item_count > 0).sum()))
    cold_users = _pick(rng, np.flatnonzero(user_count >= cfg.cold_user_history + 2),
                       cfg.cold_user_fraction, int((user_count > 0).sum()))
    on_cold_item = np.isin(events.item, cold_items)
    of_cold_user = np.isin(events.user, cold_users) & ~on_cold_item

    # cold users keep their first `cold_user_history` events; the rest are their test targets
    cu = events.subset(of_cold_user)
    cu_rank, _ = _rank_within_user(cu, _time_order(cu)) if len(cu) else (np.zeros(0, np.int64), None)
    cu_hist = history[of_cold_user]
    cu_train = cu_hist | (cu_rank < cfg.cold_user_history)

    warm = ~on_cold_item & ~of_cold_user
    ev, hist = events.subset(warm), history[warm]
    if cfg.kind == "user_temporal":
        held = user_temporal_mask(ev, hist, cfg.test_fraction, cfg.test_last_n)
    else:
        held = global_time_mask(ev, hist, cfg.test_fraction)
    train = ev.subset(~held).concat(cu.subset(cu_train))
    train_hist = np.concatenate([hist[~held], cu_hist[cu_train]])
    test = ev.subset(held)
    cold_user_test = cu.subset(~cu_train)

    if cfg.kind == "global_time":  # users / items first seen after the cut are naturally cold
        seen_u = np.zeros(n_users, bool)
        seen_u[train.user] = True
        seen_i = np.zeros(n_items, bool)
        seen_i[train.item] = True
        new_u, new_i = ~seen_u[test.user], ~seen_i[test.item]
        late_items = np.unique(test.item[new_i])
        cold_items = np.union1d(cold_items, late_items)
        cold_users = np.union1d(cold_users, np.unique(test.user[new_u & ~new_i]))
        cold_user_test = cold_user_test.concat(test.subset(new_u & ~new_i))
        cold_item_events = events.subset(on_cold_item).concat(test.subset(new_i))
        test = test.subset(~new_u & ~new_i)
    else:
        cold_item_events = events.subset(on_cold_item)

    if cfg.valid_fraction > 0 or cfg.valid_last_n is not None:
        if cfg.kind == "user_temporal":
            vmask = user_temporal_mask(train, train_hist | np.isin(train.user, cold_users),
                                       cfg.valid_fraction, cfg.valid_last_n)
        else:
            vmask = global_time_mask(train, train_hist, cfg.valid_fraction)
        train_inner, valid = train.subset(~vmask), train.subset(vmask)
        inner_items = np.zeros(n_items, bool)
        inner_items[train_inner.item] = True
        valid = valid.subset(inner_items[valid.item])  # items new in the validation period are not targets
    else:
        train_inner, valid = train, Interactions.empty()

    if len(train) == 0 or not train.positive.any():
        raise ValueError("the split leaves no positive training events; check train.split settings")
    if len(test.positives()) == 0 and len(cold_item_events.positives()) == 0:
        raise ValueError("the split leaves no positive test events; lower test_fraction or add data")
    return Split(train=train, train_inner=train_inner, valid=valid.positives(), test=test.positives(),
                 test_cold_item=cold_item_events.positives(), test_cold_user=cold_user_test.positives(),
                 cold_items=cold_items.astype(np.int64), cold_users=cold_users.astype(np.int64), test_events=test)
