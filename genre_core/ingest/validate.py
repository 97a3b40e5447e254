"""Great Expectations 1.x suites per table, turned into row-level rejects.

Each rule is one GX expectation on a typed pandas frame whose ``_rid`` column identifies each row;
GX's COMPLETE result format returns the failing rows' ``_rid`` values, which become rejects with the rule name.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl

from genre_core.config import ValidationConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    name: str  # rule name written to rejects.rule
    expectation: str  # GX expectation class name
    kwargs: dict[str, Any]
    message: str  # detail template, formatted with the row's columns


# items/users ``attributes`` must hold a JSON object (``_attrs_ok`` from ingest.typing); the row is rejected otherwise
ATTRIBUTES_RULE = Rule("attributes_json", "ExpectColumnValuesToBeInSet", {"column": "_attrs_ok", "value_set": [True]},
                       "attributes is not a JSON object: {_attrs_error}")


def rules_for(entity: str, vcfg: ValidationConfig, now: datetime) -> list[Rule]:
    """The validation suite of one entity table (items, users or interactions)."""
    if entity == "items":
        return [Rule("item_id_not_null", "ExpectColumnValuesToNotBeNull", {"column": "item_id"}, "item_id is empty"),
                Rule("title_not_null", "ExpectColumnValuesToNotBeNull", {"column": "title"}, "title is empty"),
                ATTRIBUTES_RULE]
    if entity == "users":
        return [Rule("user_id_not_null", "ExpectColumnValuesToNotBeNull", {"column": "user_id"}, "user_id is empty"),
                ATTRIBUTES_RULE]
    rules = [
        Rule("user_id_not_null", "ExpectColumnValuesToNotBeNull", {"column": "user_id"}, "user_id is empty"),
        Rule("item_id_not_null", "ExpectColumnValuesToNotBeNull", {"column": "item_id"}, "item_id is empty"),
        Rule("value_type", "ExpectColumnValuesToNotBeNull", {"column": "value"},
             "value {value_raw!r} is not a number"),
        Rule("timestamp_parse", "ExpectColumnValuesToBeInSet", {"column": "_ts_ok", "value_set": [True]},
             "timestamp {ts_raw!r} cannot be parsed"),
        Rule("timestamp_range", "ExpectColumnValuesToBeBetween",
             {"column": "ts", "min_value": datetime(vcfg.min_year, 1, 1),
              "max_value": now + timedelta(seconds=vcfg.future_tolerance_s)},
             "timestamp {ts} is before " + str(vcfg.min_year) + " or in the future"),
        Rule("unknown_item", "ExpectColumnValuesToBeInSet", {"column": "_item_known", "value_set": [True]},
             "item_id {item_id!r} is not a known item"),
        Rule("unknown_user", "ExpectColumnValuesToBeInSet", {"column": "_user_known", "value_set": [True]},
             "user_id {user_id!r} is not a known user"),
        Rule("duplicate", "ExpectColumnValuesToBeInSet", {"column": "_dup", "value_set": [False]},
             "duplicate of an earlier row (same user, item, event type and time)"),
    ]
    if vcfg.value_min is not None or vcfg.value_max is not None:
        rules.insert(3, Rule("value_range", "ExpectColumnValuesToBeBetween",
                             {"column": "value", "min_value": vcfg.value_min, "max_value": vcfg.value_max},
                             f"value {{value}} outside [{vcfg.value_min}, {vcfg.value_max}]"))
    return rules


def _context():  # noqa: ANN202 - GX types are heavy to import at module level
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx  # noqa: PLC0415

    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - progress bar switch moved between GX releases; cosmetic only
        pass
    return gx, ctx


def validate_frame(entity: str, frame: pl.DataFrame, vcfg: ValidationConfig) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Validate ``frame`` (typed, with a unique ``_rid`` per row) with the entity's GX suite.

    Returns (rejects: one row per failing input row with columns _rid, rule, detail; a JSON-able summary of the
    GX validation result: success, statistics, per-expectation unexpected counts).
    """
    import great_expectations.expectations as gxe  # noqa: PLC0415

    gx, ctx = _context()
    now = datetime.now()
    rules = [r for r in rules_for(entity, vcfg, now) if r.kwargs["column"] in frame.columns]
    suite = gx.ExpectationSuite(name=f"{entity}_suite")
    for rule in rules:
        suite.add_expectation(getattr(gxe, rule.expectation)(**rule.kwargs, meta={"rule": rule.name}))
    pdf: pd.DataFrame = frame.select([c for c in frame.columns if c != "_raw"]).to_pandas()
    batch = (ctx.data_sources.add_pandas(f"{entity}_source").add_dataframe_asset(entity)
             .add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": pdf}))
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_rid"]})
    failing: dict[int, list[str]] = {}
    summary: dict[str, Any] = {"suite": suite.name, "success": bool(result.success), "rows": frame.height, "expectations": []}
    by_name = {r.name: r for r in rules}
    for res in result.results:
        name = res.expectation_config.meta["rule"]
        idx = res.result.get("unexpected_index_list") or []
        rows = [int(d["_rid"]) if isinstance(d, dict) else int(pdf["_rid"].iloc[d]) for d in idx]
        summary["expectations"].append({"rule": name, "type": res.expectation_config.type,
                                        "column": by_name[name].kwargs["column"], "success": bool(res.success),
                                        "unexpected_count": len(rows)})
        for row in rows:
            failing.setdefault(row, []).append(name)
    if not failing:
        return pl.DataFrame(schema={"_rid": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8}), summary
    bad = frame.filter(pl.col("_rid").is_in(list(failing)))
    out_rows, out_rule, out_detail = [], [], []
    for row in bad.iter_rows(named=True):
        names = failing[row["_rid"]]
        details = []
        for n in names:
            try:
                details.append(by_name[n].message.format(**row))
            except (KeyError, IndexError, ValueError):
                details.append(n)
        out_rows.append(row["_rid"])
        out_rule.append(names[0])
        out_detail.append("; ".join(details))
    return pl.DataFrame({"_rid": out_rows, "rule": out_rule, "detail": out_detail},
                        schema={"_rid": pl.Int64, "rule": pl.Utf8, "detail": pl.Utf8}), summary
