"""Pseudonymisation leaves no raw user id: rejected lines are pseudonymised too, and a warehouse keeps the
privacy settings it was built with (a later change is refused instead of mixing raw ids and pseudonyms)."""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import duckdb

    from genre_core.config import PrivacyConfig

STATE_KEY = "privacy.settings"
_SPLIT = re.compile(r"([\t,|;])")


def privacy_fingerprint(pcfg: PrivacyConfig) -> str:
    """``"off"`` or ``"hmac-sha256:<16 hex>"``: identifies the key without revealing it (HMAC of a constant)."""
    if not pcfg.pseudonymize_user_ids:
        return "off"
    key = os.environ.get(pcfg.key_env, "")
    if not key:
        from genre_core.config import ConfigError  # noqa: PLC0415

        raise ConfigError(f"privacy.pseudonymize_user_ids is true but the environment variable {pcfg.key_env} "
                          "(privacy.key_env) holding the key is not set; the key is never read from a config file")
    return "hmac-sha256:" + hmac.new(key.encode(), b"genre-privacy-fingerprint", hashlib.sha256).hexdigest()[:16]


def ensure_privacy_state(con: duckdb.DuckDBPyConnection, pcfg: PrivacyConfig) -> None:
    """Record the privacy settings on first ingest; raise ConfigError when they differ from the stored ones.

    A warehouse that already holds users but no record was built before this check existed, without
    pseudonymisation (the default), and is treated as ``off``.
    """
    from genre_core.config import ConfigError  # noqa: PLC0415
    from genre_core.warehouse import get_state, set_state  # noqa: PLC0415

    current = privacy_fingerprint(pcfg)
    stored = get_state(con, STATE_KEY)
    if stored is None:
        has_users = con.execute("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM interactions)"
                                ).fetchall()[0][0] > 0
        stored = "off" if has_users else current
        set_state(con, STATE_KEY, stored)
    if stored != current:
        def say(fp: str) -> str:
            return "without pseudonymisation (raw user ids)" if fp == "off" else f"pseudonymised with key {fp}"
        raise ConfigError(
            f"privacy settings changed: this warehouse was built {say(stored)} but the config asks for "
            f"{say(current)} (privacy.pseudonymize_user_ids / ${pcfg.key_env}). Mixing them would keep raw ids "
            "or break user histories: ingest into a new warehouse (warehouse.path) instead")


def pseudonymize_raw(rejects: pl.DataFrame, frame: pl.DataFrame, pseudo: Callable[[str], str]) -> pl.DataFrame:
    """``rejects`` with the user-id field of each ``raw`` line replaced by its pseudonym.

    ``frame`` is the batch's canonical frame before typing (``_row`` and the raw ``user_id``). A line whose
    user id is unknown (it did not parse into fields) is redacted whole, keeping only its length.
    """
    ids: dict[int, set[str]] = {}
    for row, uid in frame.select("_row", "user_id").iter_rows():
        if uid is not None and str(uid).strip():
            ids.setdefault(int(row), set()).add(str(uid).strip())

    def fix(row: int, raw: str | None) -> str | None:
        if raw is None:
            return None
        uids = ids.get(int(row))
        if not uids:
            return f"<redacted: {len(raw)} characters that did not parse; user ids are pseudonymised>"
        parts = _SPLIT.split(raw)
        return "".join(pseudo(p.strip()) if p.strip() in uids else p for p in parts)

    fixed = [fix(r, x) for r, x in rejects.select("row_number", "raw").iter_rows()]
    return rejects.with_columns(pl.Series("raw", fixed, dtype=pl.Utf8))
