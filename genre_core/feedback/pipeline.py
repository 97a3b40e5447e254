"""The feedback stage: score the lists published earlier against the interactions ingested since.

Runs in ``nightly`` after ingest and before retraining. Each accepted interactions batch is attributed to the
latest complete run published before the batch was ingested (``recommendation_runs.finished_at`` <
``ingest_batches.finished_at``): those are the lists users had when they did what the batch records. For every
run with attributed batches and each cut-off in ``feedback.k_values`` (<= the run's K) one row of the warehouse
table ``feedback`` is computed (``genre_core.feedback.metrics``), upserted by (run_id, k), logged to MLflow and
plotted over runs (``plots/feedback_trend.png``). Rows whose inputs did not change are left alone, so a rerun
logs nothing new. Published lists are read from the DuckDB serving file (``recommendations_history`` keeps the
last ``recommend.keep_runs`` runs).
"""
from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from genre_core.config import GenreConfig
from genre_core.events import classify, resolve_rules
from genre_core.feedback.metrics import feedback_metrics
from genre_core.feedback.store import ensure_table, read_feedback, upsert
from genre_core.paths import serving_path
from genre_core.warehouse import connect

log = logging.getLogger(__name__)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    out = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    if not isinstance(out, pl.DataFrame):
        raise TypeError("expected a table")
    return out


def _local_to_utc(ts: datetime) -> datetime:
    """ingest_batches times are naive local time, recommendation_runs naive UTC: compare in naive UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def read_published(cfg: GenreConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(runs: run_id, model_name, model_version, k, finished_at; lists: run_id, user_id, rank, item_id) of the
    complete runs still in the serving file; empty frames when nothing was published (or not to DuckDB)."""
    path = serving_path(cfg)
    if not Path(path).exists():
        return pl.DataFrame(), pl.DataFrame()
    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = _frame(con, """SELECT run_id, model_name, model_version, k, finished_at FROM recommendation_runs
                              WHERE status = 'complete'
                                AND run_id IN (SELECT DISTINCT run_id FROM recommendations_history)
                              ORDER BY finished_at, run_id""")
        lists = _frame(con, "SELECT run_id, user_id, rank, item_id FROM recommendations_history")
    finally:
        con.close()
    return runs, lists


def attribute_batches(runs: pl.DataFrame, batches: pl.DataFrame) -> dict[str, list[str]]:
    """run_id -> the batch_ids ingested after it and before the next run (batches: batch_id, finished_at UTC)."""
    out: dict[str, list[str]] = {}
    if runs.height == 0:
        return out
    times = runs["finished_at"].to_list()
    ids = runs["run_id"].to_list()
    for bid, fin in zip(batches["batch_id"].to_list(), batches["finished_at"].to_list(), strict=True):
        before = [j for j, t in enumerate(times) if t < fin]
        if before:
            out.setdefault(ids[before[-1]], []).append(bid)
    return out


def compute_feedback(cfg: GenreConfig) -> list[dict[str, Any]]:
    """The feedback rows (see ``genre_core.feedback.store.COLUMNS``) of every published run that has
    interactions ingested after it; reads only (serving file, warehouse)."""
    runs, lists = read_published(cfg)
    if runs.height == 0:
        return []
    rules = resolve_rules(cfg)
    with connect(cfg, read_only=True) as con:
        batches = _frame(con, """SELECT batch_id, finished_at FROM ingest_batches
                                 WHERE entity = 'interactions' AND status = 'accepted' AND rows_added > 0
                                   AND finished_at IS NOT NULL
                                 ORDER BY finished_at""")
        inter = _frame(con, """SELECT user_id, item_id, event_type, value::DOUBLE AS value, is_history, ts,
                                      batch_id FROM interactions""")
        items = _frame(con, "SELECT item_id FROM items UNION SELECT item_id FROM interactions")
    batches = batches.with_columns(pl.col("finished_at").map_elements(_local_to_utc, return_dtype=pl.Datetime("us")))
    inter = inter.with_columns(positive=pl.Series(classify(inter, rules)[0], dtype=pl.Boolean))
    fin = dict(zip(batches["batch_id"].to_list(), batches["finished_at"].to_list(), strict=True))
    owned = attribute_batches(runs, batches)
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC).replace(tzinfo=None)
    for run in runs.iter_rows(named=True):
        bids = owned.get(run["run_id"])
        if not bids:
            continue
        new = inter.filter(pl.col("batch_id").is_in(bids))
        known = [b for b, t in fin.items() if t <= run["finished_at"]]
        before = inter.filter(pl.col("batch_id").is_in(known))
        catalogue = max(items.height, 1)
        run_lists = lists.filter(pl.col("run_id") == run["run_id"])
        for k in sorted({k for k in cfg.feedback.k_values if k <= run["k"]} or {run["k"]}):
            m = feedback_metrics(run_lists, new, before, k, catalogue)
            rows.append({"run_id": run["run_id"], "model_name": run["model_name"],
                         "model_version": str(run["model_version"]), "published_at": run["finished_at"],
                         "window_start": new["ts"].min(), "window_end": new["ts"].max(),
                         "batches": len(bids), **m, "catalogue_items": catalogue, "computed_at": now})
    return rows


def run_feedback(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """Compute, store and log the feedback of the published runs. Returns {"rows": new/changed rows,
    "unchanged", "runs_scored", "mlflow_run_id", "trend_png", "reason" (when nothing to do), "seconds"}."""
    t0 = time.perf_counter()
    if cfg.warehouse.publish_to != "duckdb":
        return {"rows": [], "reason": "feedback reads published lists from the DuckDB serving file; "
                                      f"warehouse.publish_to is {cfg.warehouse.publish_to}", "seconds": 0.0}
    rows = compute_feedback(cfg)
    with connect(cfg) as con:
        ensure_table(con)
        changed = upsert(con, rows)
        history = read_feedback(con)
    summary: dict[str, Any] = {"rows": changed, "unchanged": len(rows) - len(changed),
                               "runs_scored": len({r["run_id"] for r in rows}), "mlflow_run_id": None,
                               "trend_png": None}
    if not rows:
        summary["reason"] = "no published run has interactions ingested after it yet"
    if changed:
        summary.update(_log_mlflow(cfg, changed, history))
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def _log_mlflow(cfg: GenreConfig, changed: list[dict[str, Any]], history: pl.DataFrame) -> dict[str, Any]:
    """One MLflow run per feedback computation: the new rows' metrics (step = the run's position among all
    scored runs), the whole table as JSON and the trend plot."""
    from genre_core.feedback.plots import trend_plot  # noqa: PLC0415
    from genre_core.tracking import RunLogger, mlflow_key  # noqa: PLC0415

    order = {rid: j for j, rid in enumerate(history.sort("published_at")["run_id"].unique(maintain_order=True))}
    run = RunLogger(cfg, f"feedback-{time.strftime('%Y%m%dT%H%M%S')}", tags={"genre.stage": "feedback"})
    try:
        for r in changed:
            vals = {mlflow_key(f"feedback.{key}@{r['k']}"): float(r[key]) for key in
                    ("hit_rate", "precision", "recall", "active_share", "coverage", "novelty") if r[key] is not None}
            run.metrics(vals, step=order.get(r["run_id"], 0))
        run.json_artifact(history.to_dicts(), "feedback.json")
        with tempfile.TemporaryDirectory() as tmp:
            png = trend_plot(history, Path(tmp) / "feedback_trend.png")
            run.artifacts(Path(tmp), "plots")
        run.end(ok=True)
    except Exception:
        run.end(ok=False)
        raise
    return {"mlflow_run_id": run.run_id, "trend_png": f"plots/{png.name}"}
