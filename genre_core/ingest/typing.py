"""From canonical string columns to typed frames: numbers, timestamps, ids, known-id and duplicate flags."""
from __future__ import annotations

import hashlib
import hmac
import json
import os

import polars as pl

from genre_core.config import ConfigError, PrivacyConfig
from genre_core.ingest.readers import EntityBatch, clean_items


def pseudonymizer(pcfg: PrivacyConfig):  # noqa: ANN201
    """A keyed hash (HMAC-SHA256, 16 hex chars) for user ids, or None when pseudonymisation is off."""
    if not pcfg.pseudonymize_user_ids:
        return None
    key = os.environ.get(pcfg.key_env)
    if not key:
        raise ConfigError(f"privacy.pseudonymize_user_ids is true but the environment variable {pcfg.key_env} "
                          "(privacy.key_env) holding the key is not set; the key is never read from a config file")
    k = key.encode()
    return lambda uid: hmac.new(k, uid.encode(), hashlib.sha256).hexdigest()[:16]


def _ids(col: str) -> pl.Expr:
    c = pl.col(col).str.strip_chars()
    return pl.when(c == "").then(None).otherwise(c).alias(col)


def _parse_ts(fmt: str) -> pl.Expr:
    raw = pl.col("ts").str.strip_chars()
    if fmt in ("unix", "unix_ms"):
        n = raw.cast(pl.Int64, strict=False)
        return pl.from_epoch(n, time_unit="s" if fmt == "unix" else "ms").alias("ts")
    return raw.str.strptime(pl.Datetime("us"), fmt, strict=False).alias("ts")


def type_batch(batch: EntityBatch, privacy: PrivacyConfig, known_items: pl.Series | None,
               known_users: pl.Series | None) -> pl.DataFrame:
    """Typed frame of a batch with a unique ``_rid`` per row and the helper columns the GX suite checks.

    interactions: value Float64 (null when not numeric; ``value_raw`` keeps the text), ts Datetime (``ts_raw``),
    ``_ts_ok`` (history rows need no time), ``_item_known``/``_user_known`` against ``known_*``, ``_dup``
    (a repeat of an earlier row of the batch).
    """
    f = batch.frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_rid"))
    pseudo = pseudonymizer(privacy)
    if batch.entity == "items":
        return clean_items(_check_attributes(f.with_columns(_ids("item_id"))))
    if batch.entity == "users":
        f = _check_attributes(f.with_columns(_ids("user_id")))
        return f.with_columns(pl.col("user_id").map_elements(pseudo, return_dtype=pl.Utf8)) if pseudo else f
    f = f.with_columns(_ids("user_id"), _ids("item_id"), pl.col("value").alias("value_raw"),
                       pl.col("ts").alias("ts_raw"))
    if pseudo:
        f = f.with_columns(pl.col("user_id").map_elements(pseudo, return_dtype=pl.Utf8))
    f = f.with_columns(pl.col("value").str.strip_chars().cast(pl.Float64, strict=False), _parse_ts(batch.ts_format))
    f = f.with_columns(
        (pl.col("is_history") | pl.col("ts").is_not_null()).alias("_ts_ok"),
        (pl.col("item_id").is_in(known_items.implode()) if known_items is not None else pl.lit(True)).alias("_item_known"),
        (pl.col("user_id").is_in(known_users.implode()) if known_users is not None else pl.lit(True)).alias("_user_known"),
        (~pl.struct("user_id", "item_id", "event_type", "is_history", "ts").is_first_distinct()).alias("_dup"),
    )
    return f


def _attributes_error(text: str | None) -> str:
    """"" when ``text`` is empty or a JSON object, else why not (shown in rejects.detail)."""
    if text is None or not str(text).strip():
        return ""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"invalid JSON ({exc.msg} at character {exc.pos})"
    return "" if isinstance(value, dict) else f"JSON {type(value).__name__}, not an object"


def _check_attributes(f: pl.DataFrame) -> pl.DataFrame:
    """Add ``_attrs_ok`` / ``_attrs_error``; empty attributes become ``{}``."""
    errors = pl.Series("_attrs_error", [_attributes_error(x) for x in f["attributes"]], dtype=pl.Utf8)
    return f.with_columns(errors, (errors == "").alias("_attrs_ok"),
                          pl.when(pl.col("attributes").str.strip_chars().fill_null("") == "").then(pl.lit("{}"))
                          .otherwise(pl.col("attributes")).alias("attributes"))


def merge_duplicate_items(items: pl.DataFrame) -> pl.DataFrame:
    """Merge rows that share an item_id: the first non-empty value of each field wins."""
    cols = ["title", "text", "category", "image_path", "attributes"]
    return items.group_by("item_id", maintain_order=True).agg(
        [pl.col(c).drop_nulls().first().alias(c) for c in cols]
    )
