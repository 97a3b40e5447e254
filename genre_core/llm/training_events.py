"""The training part of the configured split, as warehouse rows, for the prompts that describe users.

A profile or a cold-user prompt must not show an event that the train stage's evaluation holds out: otherwise the
profile vectors carry the test items (their titles, most recent first) into the model and every offline metric of
a model that reads them is inflated. ``training_interactions`` therefore recomputes the very split of the train
stage (``train.split`` with ``train.seed``, the same event rules as ``genre_core.models.pipeline.prepare``) and
returns the warehouse's interaction rows that fall in its training part. With ``llm.user_history: all`` the
profilers see every event instead (a deployment that does not evaluate offline).
"""
from __future__ import annotations

import logging

import numpy as np
import polars as pl

from genre_core.config import GenreConfig

log = logging.getLogger(__name__)


def training_split(cfg: GenreConfig, frames=None):  # noqa: ANN001, ANN201 - WarehouseFrames; loading's types
    """(frames, data, all events, training events) of the configured split, as the train stage makes it (its
    event rules, ``train.split``, ``train.seed``); every event counts as training when the data is too small to
    split. One place for the profilers and the cold-user generator."""
    from genre_core.evaluation.split import make_split  # noqa: PLC0415 - numpy work, only when profiles run
    from genre_core.events import resolve_rules  # noqa: PLC0415
    from genre_core.models.loading import read_warehouse, to_index_space  # noqa: PLC0415

    frames = read_warehouse(cfg) if frames is None else frames
    data, events, history = to_index_space(frames, resolve_rules(cfg))
    try:
        train = make_split(events, history, data.idmap.n_users, data.idmap.n_items, cfg.train.split,
                           cfg.train.seed).train
    except ValueError as exc:  # too little data to split: every event is "training"
        log.warning("LLM user prompts: the configured split fails (%s); every interaction counts as training", exc)
        train = events
    return frames, data, events, train


def training_interactions(cfg: GenreConfig, frames=None, split=None) -> pl.DataFrame:  # noqa: ANN001
    """``[user_id, item_id, event_type, value, ts, is_history]`` rows of the warehouse (``ts`` epoch seconds)
    that the configured split trains on; all rows when the data is too small to split. ``split``: a
    ``training_split`` result already computed for ``cfg`` (not recomputed then)."""
    frames, _, events, train = split if split is not None else training_split(cfg, frames)
    if train is events:
        return frames.interactions
    # the split keeps rows whole: a (user, item, ts) key identifies a row (duplicates share their fate)
    keys = np.stack([events.user, events.item, events.ts], axis=1)
    kept = np.stack([train.user, train.item, train.ts], axis=1)
    return frames.interactions.filter(pl.Series(_rows_in(keys, kept)))


def _rows_in(rows: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """bool [n]: whether each int64 row of ``rows`` [n, 3] occurs in ``subset`` [m, 3]."""
    if not len(subset):
        return np.zeros(len(rows), dtype=bool)
    view = np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))
    a = np.ascontiguousarray(rows).view(view).ravel()
    b = np.ascontiguousarray(subset.astype(rows.dtype)).view(view).ravel()
    return np.isin(a, b)
