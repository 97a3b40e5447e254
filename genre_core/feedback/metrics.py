"""How a published list did against what its users did next: pure functions over polars frames.

Inputs (string ids):
* ``lists``: user_id, rank (1..K), item_id: one published run;
* ``new``: user_id, item_id, positive (bool): the interactions that arrived after it was published (every role;
  ``positive`` from the ``events`` rules);
* ``before``: user_id, item_id, positive: the interactions known when it was published.

Definitions at cut-off k (lists cut to rank <= k):
* users_shown: users with a list; users_active: shown users with any new interaction (any event type);
* users_evaluated: shown users with at least one new positive on an item that was not already a positive of
  theirs before (re-consumption cannot be a hit: seen items are never in a list);
* per evaluated user, hits = |top-k & new positives|; hit_rate = mean(hits > 0), precision = mean(hits / k),
  recall = mean(hits / |new positives|) over the evaluated users (None when there is none);
* coverage = distinct items shown / catalogue size;
* novelty = mean over shown (user, item) of -log2((n_i + 1) / (n + 1)), n_i the users with a positive on the
  item before publication, n the users with any positive before publication (bits; higher = less popular).
"""
from __future__ import annotations

import math
from typing import Any

import polars as pl


def _pairs(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("positive")).select("user_id", "item_id").unique()


def feedback_metrics(
    lists: pl.DataFrame, new: pl.DataFrame, before: pl.DataFrame, k: int, n_catalogue: int
) -> dict[str, Any]:
    """The metrics above for one run at cut-off ``k`` (int >= 1); ``n_catalogue`` >= 1 items."""
    if k < 1 or n_catalogue < 1:
        raise ValueError(f"k ({k}) and n_catalogue ({n_catalogue}) must be >= 1")
    top = lists.filter(pl.col("rank") <= k).select("user_id", "item_id").unique()
    shown = top.select("user_id").unique()
    active = new.select("user_id").unique().join(shown, on="user_id", how="semi")
    fresh = _pairs(new).join(_pairs(before), on=["user_id", "item_id"], how="anti")
    fresh = fresh.join(shown, on="user_id", how="semi")
    per_user = (fresh.join(top.with_columns(hit=pl.lit(True)), on=["user_id", "item_id"], how="left")
                .group_by("user_id").agg(n_new=pl.len(), hits=pl.col("hit").fill_null(False).sum()))
    n_eval = per_user.height
    if n_eval:
        hits = per_user["hits"].cast(pl.Float64)
        hit_rate = float((hits > 0).mean())
        precision = float((hits / k).mean())
        recall = float((hits / per_user["n_new"].cast(pl.Float64)).mean())
    else:
        hit_rate = precision = recall = None
    pos_before = _pairs(before)
    n_users = max(pos_before.select("user_id").n_unique(), 0)
    pop = pos_before.group_by("item_id").agg(n_i=pl.len())
    shown_pop = top.join(pop, on="item_id", how="left").with_columns(pl.col("n_i").fill_null(0))
    novelty = None
    if shown_pop.height:
        novelty = float((-(((shown_pop["n_i"] + 1) / (n_users + 1)).log(2))).mean())
    return {
        "k": k,
        "users_shown": shown.height,
        "users_active": active.height,
        "active_share": active.height / shown.height if shown.height else None,
        "users_evaluated": n_eval,
        "new_interactions": new.height,
        "hits": int(per_user["hits"].sum()) if n_eval else 0,
        "hit_rate": hit_rate,
        "precision": precision,
        "recall": recall,
        "coverage": top.select("item_id").n_unique() / n_catalogue,
        "novelty": novelty if novelty is None or math.isfinite(novelty) else None,
    }
