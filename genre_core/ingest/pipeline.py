"""Ingestion: read -> type -> validate (GX) -> write accepted rows, rejects and the batch record atomically.

Invariants: for every batch rows_in = rows_accepted + rows_rejected; a file already ingested (same sha256)
adds nothing; a refused batch (reject rate over the threshold) leaves the data tables unchanged.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime

import polars as pl
from tqdm import tqdm

from genre_core.config import GenreConfig
from genre_core.ingest.readers import EntityBatch, read_dataset
from genre_core.ingest.typing import merge_duplicate_items, pseudonymizer, type_batch
from genre_core.ingest.validate import validate_frame
from genre_core.security.privacy import ensure_privacy_state, pseudonymize_raw
from genre_core.warehouse import connect, rollback


class BatchRefused(RuntimeError):
    """A batch refused as a whole: too many rejects. The warehouse data tables are unchanged."""


@dataclass
class BatchResult:
    batch_id: str
    entity: str
    source: str
    status: str  # accepted | refused | unchanged
    rows_in: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_added: int = 0
    rows_updated: int = 0
    message: str = ""
    reject_rules: dict[str, int] = field(default_factory=dict)
    validation: dict = field(default_factory=dict)


def _known(con, table: str, col: str, extra: pl.Series | None) -> pl.Series:  # noqa: ANN001
    existing = pl.Series(col, [r[0] for r in con.execute(f"SELECT {col} FROM {table}").fetchall()], dtype=pl.Utf8)
    return pl.concat([existing, extra]).unique() if extra is not None else existing


def _already_ingested(con, batch: EntityBatch, dataset: str) -> str | None:  # noqa: ANN001
    row = con.execute(
        "SELECT batch_id FROM ingest_batches WHERE sha256 = ? AND entity = ? AND dataset = ? AND status = 'accepted' "
        "ORDER BY started_at DESC LIMIT 1", [batch.raw.sha256, batch.entity, dataset]).fetchall()
    return row[0][0] if row else None


def _already_refused(con, batch: EntityBatch, dataset: str) -> str | None:  # noqa: ANN001
    row = con.execute(
        "SELECT batch_id FROM ingest_batches WHERE sha256 = ? AND entity = ? AND dataset = ? AND status = 'refused' "
        "ORDER BY started_at DESC LIMIT 1", [batch.raw.sha256, batch.entity, dataset]).fetchall()
    return row[0][0] if row else None


def _rejects_frame(batch: EntityBatch, typed: pl.DataFrame, rejects: pl.DataFrame, batch_id: str) -> pl.DataFrame:
    now = datetime.now()
    rows = typed.join(rejects, on="_rid", how="inner").select(
        pl.col("_row").alias("row_number"), "rule", "detail", pl.col("_raw").alias("raw"))
    parse = batch.raw.rejects.select("row_number", "rule", "detail", "raw")
    out = pl.concat([parse, rows]).sort("row_number")
    return out.select(pl.lit(batch_id).alias("batch_id"), pl.lit(str(batch.raw.path)).alias("source"),
                      "row_number", "rule", "detail", "raw", pl.lit(now).alias("rejected_at"))


def _write_entity(con, entity: str, accepted: pl.DataFrame, batch_id: str) -> tuple[int, int]:  # noqa: ANN001
    """Insert new rows / update changed ones. Returns (added, updated)."""
    now = datetime.now()
    if entity == "interactions":
        df = accepted.select("user_id", "item_id", "event_type", "value", "ts", "is_history").with_columns(
            pl.lit(batch_id).alias("batch_id"))
        con.register("_new", df.to_arrow())
        before = con.execute("SELECT count(*) FROM interactions").fetchall()[0][0]
        con.execute("""
            INSERT INTO interactions (event_key, user_id, item_id, event_type, value, ts, is_history, batch_id)
            SELECT k, user_id, item_id, event_type, value, ts, is_history, batch_id FROM (
                SELECT md5(concat_ws('\x1f', user_id, item_id, event_type, is_history::VARCHAR,
                       coalesce(strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), ''))) AS k, * FROM _new)
            WHERE k NOT IN (SELECT event_key FROM interactions)""")
        con.unregister("_new")
        return con.execute("SELECT count(*) FROM interactions").fetchall()[0][0] - before, 0
    cols = ["item_id", "title", "text", "category", "image_path", "attributes"] if entity == "items" else ["user_id", "attributes"]
    key = cols[0]
    df = accepted.select(cols).with_columns(pl.lit(batch_id).alias("batch_id"), pl.lit(now).alias("updated_at"))
    con.register("_new", df.to_arrow())
    changed_cond = " OR ".join(f"t.{c} IS DISTINCT FROM n.{c}" for c in cols[1:])
    added = con.execute(f"SELECT count(*) FROM _new n ANTI JOIN {entity} t USING ({key})").fetchall()[0][0]
    updated = con.execute(f"SELECT count(*) FROM _new n JOIN {entity} t USING ({key}) WHERE {changed_cond}").fetchall()[0][0]
    con.execute(f"""INSERT OR REPLACE INTO {entity} SELECT n.* FROM _new n LEFT JOIN {entity} t USING ({key})
                    WHERE t.{key} IS NULL OR {changed_cond}""")
    con.unregister("_new")
    return added, updated


def _users_from_interactions(con, accepted: pl.DataFrame, batch_id: str) -> int:  # noqa: ANN001
    users = accepted.select("user_id").unique().with_columns(pl.lit("{}").alias("attributes"))
    return _write_entity(con, "users", users, batch_id)[0]


def ingest_batch(cfg: GenreConfig, batch: EntityBatch, known_items: pl.Series | None,
                 known_users: pl.Series | None) -> BatchResult:
    """Validate and write one batch in one transaction. Raises BatchRefused after recording a refused batch."""
    dataset = cfg.dataset.name
    batch_id = f"{dataset}:{batch.entity}:{datetime.now():%Y%m%dT%H%M%S}:{uuid.uuid4().hex[:8]}"
    started = datetime.now()
    res = BatchResult(batch_id=batch_id, entity=batch.entity, source=str(batch.raw.path), status="accepted")
    with connect(cfg) as con:
        ensure_privacy_state(con, cfg.privacy)
        prev = _already_ingested(con, batch, dataset)
        prev_refused = _already_refused(con, batch, dataset)
        if prev is None and batch.entity == "interactions":
            known_items = _known(con, "items", "item_id", known_items) if known_items is not None else None
            known_users = _known(con, "users", "user_id", known_users) if known_users is not None else None
    if prev is not None:
        res.status, res.message = "unchanged", f"same file (sha256) as batch {prev}: nothing to add"
        return res
    typed = type_batch(batch, cfg.privacy, known_items, known_users)
    rejects, summary = validate_frame(batch.entity, typed, cfg.validation)
    res.validation = summary
    accepted = typed.join(rejects, on="_rid", how="anti")
    if batch.entity == "items":
        accepted = merge_duplicate_items(accepted)
    rej = _rejects_frame(batch, typed, rejects, batch_id)
    pseudo = pseudonymizer(cfg.privacy)
    if pseudo is not None and batch.entity in ("users", "interactions") and rej.height:
        rej = pseudonymize_raw(rej, batch.frame, pseudo)  # no raw user id in rejects.raw either
    res.rows_in, res.rows_rejected = batch.raw.rows_in, rej.height
    res.rows_accepted = res.rows_in - res.rows_rejected
    res.reject_rules = dict(rej.group_by("rule").len().iter_rows())
    rate = res.rows_rejected / res.rows_in if res.rows_in else 0.0
    refused = res.rows_in == 0 or rate > cfg.validation.max_reject_rate
    if refused:
        res.status = "refused"
        res.message = (f"{batch.raw.path}: no rows" if res.rows_in == 0 else
                       f"{batch.raw.path}: {res.rows_rejected} of {res.rows_in} rows rejected ({rate:.1%}) > "
                       f"validation.max_reject_rate {cfg.validation.max_reject_rate:.1%}; batch refused, warehouse "
                       f"unchanged; top reasons: {res.reject_rules}")
        if prev_refused is not None:  # the same bad file again: recorded once, its rejects stored once
            raise BatchRefused(f"{res.message} (same file as refused batch {prev_refused}; not recorded again)")
    with connect(cfg) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if not refused:
                res.rows_added, res.rows_updated = _write_entity(con, batch.entity, accepted, batch_id)
                if batch.entity == "interactions" and batch.users_from_interactions:
                    _users_from_interactions(con, accepted, batch_id)
            if rej.height:
                con.register("_rej", rej.to_arrow())
                con.execute("INSERT INTO rejects SELECT * FROM _rej")
                con.unregister("_rej")
            con.execute(
                "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch_id, dataset, batch.entity, str(batch.raw.path), batch.raw.sha256, res.rows_in,
                 res.rows_accepted, res.rows_rejected, res.rows_added, res.status, res.message,
                 json.dumps(summary), started, datetime.now()])
            con.execute("COMMIT")
        except Exception:
            rollback(con)
            raise
    if refused:
        raise BatchRefused(res.message)
    return res


def run_ingest(cfg: GenreConfig, progress: bool = True) -> dict:
    """Ingest the configured dataset. Returns {"dataset", "batches": [BatchResult...], "totals", "seconds"}.

    Raises SourceError (unreadable file), BatchRefused (too many rejects) or ConfigError (e.g. missing key).
    """
    t0 = time.perf_counter()
    batches = read_dataset(cfg)
    results: list[BatchResult] = []
    new_items: pl.Series | None = None
    new_users: pl.Series | None = None
    has_items = any(b.entity == "items" for b in batches)
    has_users = any(b.entity == "users" for b in batches)
    for batch in tqdm(batches, desc="ingest", unit="batch", disable=not progress):
        if batch.entity == "interactions":
            known_items = new_items if new_items is not None else (pl.Series([], dtype=pl.Utf8) if has_items else None)
            known_users = (new_users if new_users is not None else pl.Series([], dtype=pl.Utf8)) if has_users else None
            res = ingest_batch(cfg, batch, known_items, known_users)
        else:
            res = ingest_batch(cfg, batch, None, None)
            ids = batch.frame.get_column("item_id" if batch.entity == "items" else "user_id").str.strip_chars()
            if batch.entity == "items":
                new_items = ids
            else:
                new_users = ids
        results.append(res)
    with connect(cfg, read_only=False) as con:
        totals = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("items", "users", "interactions", "rejects")}
    return {"dataset": cfg.dataset.name, "batches": [asdict(r) for r in results], "totals": totals,
            "seconds": round(time.perf_counter() - t0, 2)}
