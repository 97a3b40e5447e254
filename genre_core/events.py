"""Event semantics by config (section ``events``): what each event type means to the models.

``events`` maps an event type (``interactions.event_type``: ``rating``, ``click``, ``skip``, ...) to a rule::

    events:
      click:   {role: positive}
      skip:    {role: negative, weight: 1.0}
      rating:  {role: positive, min_value: 4, below: ignore}   # ratings < 4 are not likes
      history: {role: positive}      # the key ``history`` matches rows with is_history (MIND history clicks)
      default: {role: positive}      # any event type without a rule of its own

Roles: ``positive`` (a like: training target, "seen", "because" candidate), ``negative`` (an explicit rejection:
used by the losses that can use it, e.g. the hybrid's impression-aware term; never "seen", never "because"),
``ignore`` (kept in the warehouse, unused by models). With ``min_value`` a row whose value is below it takes the
role ``below`` instead (NULL values pass). Without any rule every event is a positive (today's MovieLens
behaviour). The legacy keys ``train.split.min_positive_value`` / ``recommend.positive_min_value`` still work:
they become the ``min_value`` of the default rule (below -> ignore) when ``events.default`` is not set.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from genre_core.config import GenreConfig

HISTORY_KEY = "history"  # rule key that matches is_history rows, whatever their event type
DEFAULT_KEY = "default"  # rule key for event types without a rule of their own
ROLE_CODE = {"ignore": 0, "positive": 1, "negative": 2}


class EventRule(BaseModel):
    """What one event type means."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    role: Literal["positive", "negative", "ignore"] = "positive"  # the role of rows passing min_value
    min_value: float | None = None  # rows with value < this take `below` instead (NULL values pass)
    below: Literal["negative", "ignore"] = "ignore"  # the role of rows under min_value
    weight: float = Field(1.0, ge=0)  # loss weight: of the ranking-loss terms (positives, hybrid) or of the
    # impression-aware negative term (negatives: hybrid, sasrec); other models ignore it

    @model_validator(mode="after")
    def _check(self) -> EventRule:
        if self.min_value is not None and self.role != "positive":
            raise ValueError("min_value only applies to role: positive")
        return self


def resolve_rules(cfg: GenreConfig) -> dict[str, EventRule]:
    """``cfg.events`` with the legacy thresholds folded into the default rule (see module doc)."""
    rules = dict(cfg.events)
    legacy = cfg.train.split.min_positive_value
    if legacy is None:
        legacy = cfg.recommend.positive_min_value
    if legacy is not None and DEFAULT_KEY not in rules:
        rules[DEFAULT_KEY] = EventRule(role="positive", min_value=legacy, below="ignore")
    return rules


def role_exprs(rules: dict[str, EventRule]) -> tuple[pl.Expr, pl.Expr]:
    """polars expressions over columns event_type (str), value (float, null), is_history (bool, null):
    (role code Int8: 0 ignore, 1 positive, 2 negative; weight Float32)."""
    default = rules.get(DEFAULT_KEY, EventRule())

    def rule_role(rule: EventRule) -> pl.Expr:
        role = pl.lit(ROLE_CODE[rule.role], dtype=pl.Int8)
        if rule.min_value is None:
            return role
        below = pl.lit(ROLE_CODE[rule.below], dtype=pl.Int8)
        return pl.when(pl.col("value").is_not_null() & (pl.col("value") < rule.min_value)).then(below).otherwise(role)

    is_hist = pl.col("is_history").fill_null(False)
    typed = [(k, r) for k, r in rules.items() if k not in (HISTORY_KEY, DEFAULT_KEY)]
    conds: list[tuple[pl.Expr, EventRule]] = []
    if HISTORY_KEY in rules:
        conds.append((is_hist, rules[HISTORY_KEY]))
    conds += [(pl.col("event_type") == k, r) for k, r in typed]
    role: pl.Expr = rule_role(default)
    weight: pl.Expr = pl.lit(default.weight, dtype=pl.Float32)
    for cond, rule in reversed(conds):  # the first matching rule wins: history, then the event type
        role = pl.when(cond).then(rule_role(rule)).otherwise(role)
        weight = pl.when(cond).then(pl.lit(rule.weight, dtype=pl.Float32)).otherwise(weight)
    return role.cast(pl.Int8), weight.cast(pl.Float32)


def classify(frame: pl.DataFrame, rules: dict[str, EventRule]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roles of the rows of ``frame`` (columns event_type, value, is_history; missing ones count as null):
    (positive bool [n], negative bool [n], weight float32 [n])."""
    cols = {"event_type": pl.String, "value": pl.Float64, "is_history": pl.Boolean}
    frame = frame.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in cols.items() if c not in frame.columns])
    role, weight = role_exprs(rules)
    out = frame.with_columns(role.alias("_role"), weight.alias("_weight")).select(
        pl.col("_role").alias("role"), pl.col("_weight").alias("weight"))  # with_columns broadcasts literals
    code = out["role"].to_numpy()
    return code == 1, code == 2, out["weight"].to_numpy().astype(np.float32)


def describe(rules: dict[str, EventRule]) -> str:
    """One line per rule, for logs and reports."""
    if not rules:
        return "every event is a positive (no events rules)"
    parts = []
    for k, r in rules.items():
        thr = f" if value >= {r.min_value:g} else {r.below}" if r.min_value is not None else ""
        parts.append(f"{k}: {r.role}{thr} (weight {r.weight:g})")
    return "; ".join(parts)
