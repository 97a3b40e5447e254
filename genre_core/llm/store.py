"""Warehouse I/O of the enrich stage: read inputs, look up and write the ``llm_outputs`` cache, write vectors.

Every function takes an open connection and runs a few statements; callers hold connections briefly
(``with connect(cfg) as con``) and never across a generation.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from genre_core.llm.config import LLMConfig
from genre_core.warehouse import check_identifier, rollback

VECTOR_TABLES = {"item_features": "item_id", "user_features": "user_id"}


@dataclass(frozen=True)
class OutputRow:
    """One ``llm_outputs`` row to write (``created_at`` is set by the warehouse)."""

    backend: str
    model: str
    prompt_hash: str
    role: str
    subject_id: str
    prompt: str
    output: str | None
    status: str
    error: str | None
    tokens: int


def read_items(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``[item_id, title, text, category]`` of every item, most interacted-with first (then by id), so that a
    run cut short by the budget has enriched the items that matter most."""
    return con.sql(
        "SELECT i.item_id, i.title, i.text, i.category FROM items i "
        "LEFT JOIN (SELECT item_id, count(*) AS n FROM interactions GROUP BY item_id) c ON c.item_id = i.item_id "
        "ORDER BY coalesce(c.n, 0) DESC, i.item_id").pl()


def read_user_contexts(con: duckdb.DuckDBPyConnection, cfg: LLMConfig,
                       events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per user with interactions: ``n_interactions``, ``liked_titles`` and ``all_titles`` (most recent first,
    at most ``history_len * 3`` each, before de-duplication; untitled items left out) and the ``categories`` of
    every touched item (most recent first).

    An event is "liked" when its type is a key of ``history_min_value`` and its value reaches that minimum.
    ``events`` (``[user_id, item_id, event_type, value, ts]``, e.g. the training part of the split from
    ``genre_core.llm.training_events``) replaces the warehouse's ``interactions`` as the source.
    """
    rules = pa.table({"event_type": pa.array(list(cfg.history_min_value), pa.string()),
                      "min_value": pa.array(list(cfg.history_min_value.values()), pa.float64())})
    con.register("_llm_rules", rules)
    source = "interactions"
    if events is not None:
        con.register("_llm_events", events.select("user_id", "item_id", "event_type", "value", "ts").to_arrow())
        source = "_llm_events"
    try:
        return con.sql(
            f"""
            WITH ev AS (
                SELECT x.user_id, x.item_id, x.ts, it.title, it.category,
                       coalesce(r.min_value IS NOT NULL AND x.value >= r.min_value, false) AS liked
                FROM {source} x
                LEFT JOIN items it ON it.item_id = x.item_id
                LEFT JOIN _llm_rules r ON r.event_type = x.event_type)
            SELECT user_id, count(*) AS n_interactions,
                   list_slice(coalesce(list(title ORDER BY ts DESC NULLS LAST, item_id) FILTER (WHERE liked AND title IS NOT NULL),
                                       []::VARCHAR[]), 1, ?) AS liked_titles,
                   list_slice(coalesce(list(title ORDER BY ts DESC NULLS LAST, item_id) FILTER (WHERE title IS NOT NULL),
                                       []::VARCHAR[]), 1, ?) AS all_titles,
                   coalesce(list(category ORDER BY ts DESC NULLS LAST, item_id) FILTER (WHERE category IS NOT NULL),
                            []::VARCHAR[]) AS categories
            FROM ev GROUP BY user_id ORDER BY user_id
            """,
            params=[cfg.history_len * 3, cfg.history_len * 3],
        ).pl()
    finally:
        con.unregister("_llm_rules")
        if events is not None:
            con.unregister("_llm_events")


@contextlib.contextmanager
def _registered_transaction(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``name`` while the block runs in one transaction (rolled back on error)."""
    con.register(name, table)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            yield
            con.execute("COMMIT")
        except Exception:
            rollback(con)  # a failed rollback (disk full) does not hide the first error
            raise
    finally:
        con.unregister(name)


def _keys_table(keys: Sequence[str]) -> pa.Table:
    return pa.table({"k": pa.array(list(keys), pa.string())})


def cached(con: duckdb.DuckDBPyConnection, backend: str, model: str, hashes: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """``{prompt_hash: (status, output)}`` of the cached rows among ``hashes`` for this backend and model."""
    con.register("_llm_keys", _keys_table(hashes))
    try:
        rows = con.execute(
            "SELECT o.prompt_hash, o.status, o.output FROM llm_outputs o JOIN _llm_keys k ON o.prompt_hash = k.k "
            "WHERE o.backend = ? AND o.model = ?", [backend, model]).fetchall()
    finally:
        con.unregister("_llm_keys")
    return {h: (s, out) for h, s, out in rows}


def write_outputs(con: duckdb.DuckDBPyConnection, rows: Sequence[OutputRow]) -> None:
    """Insert or replace ``rows`` in ``llm_outputs`` in one transaction (prompt hashes must be unique)."""
    if not rows:
        return
    cols = list(OutputRow.__dataclass_fields__)
    table = pa.table({c: [getattr(r, c) for r in rows] for c in cols})
    with _registered_transaction(con, "_llm_new", table):
        con.execute(f"INSERT OR REPLACE INTO llm_outputs ({', '.join(cols)}, created_at) "
                    f"SELECT {', '.join(cols)}, current_timestamp FROM _llm_new")


def stored_hashes(con: duckdb.DuckDBPyConnection, table: str, modality: str) -> dict[str, str]:
    """``{subject_id: content_hash}`` of the vectors stored in ``table`` (item_features / user_features)."""
    key = VECTOR_TABLES[table]
    rows = con.execute(f"SELECT {key}, content_hash FROM {table} WHERE modality = ?", [modality]).fetchall()
    return dict(rows)


def write_vectors(con: duckdb.DuckDBPyConnection, table: str, modality: str, model_id: str,
                  ids: Sequence[str], content_hashes: Sequence[str], vectors: np.ndarray) -> None:
    """Replace the ``modality`` vectors of ``ids`` in ``table``; ``vectors`` is float32 ``[len(ids), d]``."""
    if table not in VECTOR_TABLES:
        raise ValueError(f"unknown vector table {table!r}; valid: {sorted(VECTOR_TABLES)}")
    if not (len(ids) == len(content_hashes) == vectors.shape[0]) or vectors.ndim != 2:
        raise ValueError(f"ids ({len(ids)}), hashes ({len(content_hashes)}) and vectors {vectors.shape} disagree")
    if not len(ids):
        return
    key, dim = VECTOR_TABLES[table], int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    new = pa.table({"id": pa.array(list(ids), pa.string()), "h": pa.array(list(content_hashes), pa.string()),
                    "v": pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32()))})
    with _registered_transaction(con, "_llm_vec", new):
        con.execute(f"DELETE FROM {table} WHERE modality = ? AND {key} IN (SELECT id FROM _llm_vec)", [modality])
        con.execute(f"INSERT INTO {table} ({key}, modality, model_id, content_hash, dim, vector, created_at) "
                    f"SELECT id, ?, ?, h, ?, v, current_timestamp FROM _llm_vec", [modality, model_id, dim])


def write_item_attribute(con: duckdb.DuckDBPyConnection, key: str, texts: dict[str, str]) -> int:
    """Set ``items.attributes[key]`` to ``texts[item_id]`` where it differs (one transaction); returns rows
    changed. The features stage reads ``attributes.enriched`` as the ``{enriched}`` template field."""
    check_identifier(key)
    if not texts:
        return 0
    with _registered_transaction(con, "_llm_attr", pa.table({"id": list(texts), "t": list(texts.values())})):
        n = con.execute(
            f"UPDATE items SET attributes = json_merge_patch(coalesce(items.attributes, '{{}}'::JSON), "
            f"json_object('{key}', a.t)) FROM _llm_attr a WHERE items.item_id = a.id "
            f"AND json_extract_string(items.attributes, '$.{key}') IS DISTINCT FROM a.t").fetchall()[0][0]
    return int(n)
