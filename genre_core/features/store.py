"""Reading and writing ``item_features`` / ``feature_failures`` (all SQL of the features stage lives here).

Invariant kept by ``write_modality``: for one modality, every stored vector has the same ``model_id``; a run
with a new model replaces them all in the same transaction that adds the new ones.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from genre_core.warehouse import rollback


@dataclass
class WriteStats:
    """Rows changed by one ``write_modality`` call."""

    written: int  # vectors inserted or replaced
    failed: int  # failure rows now recorded for the modality
    removed: int  # vectors deleted: items gone from the catalogue, items that now fail, or an old model


def read_items(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The catalogue as a polars frame: item_id, title, text, category, image_path, enriched.

    ``enriched`` is ``attributes.enriched`` (written by the LLM stage), null until it exists.
    """
    return con.sql(
        "SELECT item_id, title, text, category, image_path, "
        "json_extract_string(attributes, '$.enriched') AS enriched FROM items ORDER BY item_id"
    ).pl()


def stored_state(con: duckdb.DuckDBPyConnection, modality: str) -> dict[str, tuple[str, str]]:
    """``{item_id: (model_id, content_hash)}`` of the vectors stored for ``modality``."""
    rows = con.execute(
        "SELECT item_id, model_id, content_hash FROM item_features WHERE modality = ?", [modality]
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _vectors_arrow(vectors: np.ndarray) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]).cast(pa.list_(pa.float32()))


def write_modality(
    con: duckdb.DuckDBPyConnection,
    modality: str,
    model_id: str,
    item_ids: Sequence[str],
    content_hashes: Sequence[str],
    vectors: np.ndarray,
    failures: Sequence[tuple[str, str, str]],
    live_item_ids: Sequence[str],
) -> WriteStats:
    """Store new vectors and failures of ``modality`` in one transaction.

    ``vectors`` is float32 ``[len(item_ids), d]``; ``failures`` are (item_id, content_hash, reason) and
    replace every failure recorded before for the modality (a run re-checks all failures);
    ``live_item_ids`` is the whole current catalogue: vectors of other items are deleted, as are vectors of a
    different ``model_id`` and of items that fail now.
    """
    if len(item_ids) != len(content_hashes) or (len(item_ids) and vectors.shape[0] != len(item_ids)):
        raise ValueError(f"item_ids ({len(item_ids)}), content_hashes ({len(content_hashes)}) and vectors "
                         f"({vectors.shape[0]}) must have the same length")
    if len(item_ids) and (vectors.ndim != 2 or vectors.shape[1] < 1):
        raise ValueError(f"vectors must be [n, d] with d >= 1, got shape {vectors.shape}")
    dim = int(vectors.shape[1]) if len(item_ids) else 0
    new = pa.table({
        "item_id": pa.array(list(item_ids), pa.string()),
        "content_hash": pa.array(list(content_hashes), pa.string()),
        "vector": _vectors_arrow(vectors) if len(item_ids) else pa.array([], pa.list_(pa.float32())),
    })
    fails = pa.table({
        "item_id": pa.array([f[0] for f in failures], pa.string()),
        "content_hash": pa.array([f[1] for f in failures], pa.string()),
        "reason": pa.array([f[2] for f in failures], pa.string()),
    })
    live = pa.table({"item_id": pa.array(list(live_item_ids), pa.string())})
    con.register("_feat_new", new)
    con.register("_feat_fail", fails)
    con.register("_feat_live", live)
    con.execute("BEGIN TRANSACTION")
    try:
        stale = ("modality = ? AND (model_id <> ? OR item_id NOT IN (SELECT item_id FROM _feat_live) "
                 "OR item_id IN (SELECT item_id FROM _feat_fail))")
        removed = con.execute(
            f"SELECT count(*) FROM item_features WHERE {stale} AND item_id NOT IN (SELECT item_id FROM _feat_new)",
            [modality, model_id],
        ).fetchall()[0][0]
        con.execute(
            f"DELETE FROM item_features WHERE ({stale}) OR (modality = ? AND item_id IN (SELECT item_id FROM _feat_new))",
            [modality, model_id, modality],
        )
        con.execute(
            "INSERT INTO item_features (item_id, modality, model_id, content_hash, dim, vector, created_at) "
            "SELECT item_id, ?, ?, content_hash, ?, vector, current_timestamp FROM _feat_new",
            [modality, model_id, dim],
        )
        con.execute("DELETE FROM feature_failures WHERE modality = ?", [modality])
        con.execute(
            "INSERT INTO feature_failures (item_id, modality, model_id, content_hash, reason, failed_at) "
            "SELECT item_id, ?, ?, content_hash, reason, current_timestamp FROM _feat_fail",
            [modality, model_id],
        )
        con.execute("COMMIT")
    except Exception:
        rollback(con)
        raise
    finally:
        for name in ("_feat_new", "_feat_fail", "_feat_live"):
            con.unregister(name)
    return WriteStats(written=len(item_ids), failed=len(failures), removed=int(removed))


def load_item_vectors(con: duckdb.DuckDBPyConnection, modality: str) -> tuple[list[str], np.ndarray, str | None]:
    """All vectors of ``modality`` -> (item ids sorted, float32 ``[n, d]`` unit-norm rows, model_id).

    Returns ``([], float32 [0, 0], None)`` when none are stored. Raises RuntimeError if the stored vectors mix
    models or dimensions (the writer never leaves them so).
    """
    table = con.sql(
        "SELECT item_id, model_id, dim, vector FROM item_features WHERE modality = $modality ORDER BY item_id",
        params={"modality": modality},
    ).to_arrow_table()
    if table.num_rows == 0:
        return [], np.zeros((0, 0), dtype=np.float32), None
    models = set(table.column("model_id").to_pylist())
    dims = set(table.column("dim").to_pylist())
    if len(models) != 1 or len(dims) != 1:
        raise RuntimeError(f"item_features modality {modality!r} mixes models {sorted(models)} / dims {sorted(dims)}")
    dim = dims.pop()
    vec = table.column("vector").combine_chunks()
    values = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if values.size != table.num_rows * dim:
        raise RuntimeError(f"item_features modality {modality!r}: vector lengths do not all equal dim={dim}")
    return table.column("item_id").to_pylist(), values.reshape(table.num_rows, dim), models.pop()
