"""The warehouse table ``tuned_params``: the best parameters found by ``genre tune``, per dataset and model.

    tuned_params(dataset, model, params JSON, metric, value, baseline_value, trial_number, n_trials,
                 n_pruned, data_rows, mlflow_run_id, tuned_at)   PRIMARY KEY (dataset, model)

``value`` is the best trial's validation metric, ``baseline_value`` that of the configured parameters (the
first trial of every study), ``data_rows`` the number of interactions when tuning ran (for
``tune.when_data_grew``). The table is created on first write, so warehouses from before it need no migration.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from genre_core.config import GenreConfig
from genre_core.warehouse import connect

TABLE = "tuned_params"
_DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    dataset VARCHAR NOT NULL, model VARCHAR NOT NULL, params JSON NOT NULL, metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL, baseline_value DOUBLE, trial_number INTEGER NOT NULL, n_trials INTEGER NOT NULL,
    n_pruned INTEGER NOT NULL, data_rows BIGINT NOT NULL, mlflow_run_id VARCHAR, tuned_at TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, model))"""


@dataclass(frozen=True)
class TunedParams:
    """One stored tuning result."""

    dataset: str
    model: str
    params: dict[str, Any]
    metric: str
    value: float
    baseline_value: float | None
    trial_number: int
    n_trials: int
    n_pruned: int
    data_rows: int
    mlflow_run_id: str | None
    tuned_at: datetime


def _exists(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [TABLE]).fetchall()
    return bool(rows[0][0])


def save_tuned(cfg: GenreConfig, result: TunedParams) -> None:
    """Insert or replace the row of (dataset, model)."""
    with connect(cfg) as con:
        con.execute(_DDL)
        con.execute(
            f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [result.dataset, result.model, json.dumps(result.params, sort_keys=True), result.metric, result.value,
             result.baseline_value, result.trial_number, result.n_trials, result.n_pruned, result.data_rows,
             result.mlflow_run_id, result.tuned_at],
        )


def load_tuned(cfg: GenreConfig, models: list[str] | None = None) -> dict[str, TunedParams]:
    """{model: TunedParams} stored for ``dataset.name`` (all models, or those named); empty when none (or when
    the warehouse does not exist yet)."""
    try:
        with connect(cfg, read_only=True) as con:
            if not _exists(con):
                return {}
            rows = con.execute(f"SELECT * FROM {TABLE} WHERE dataset = ?", [cfg.dataset.name]).fetchall()
    except FileNotFoundError:
        return {}
    out: dict[str, TunedParams] = {}
    for r in rows:
        if models is not None and r[1] not in models:
            continue
        try:
            params = json.loads(r[2])
        except json.JSONDecodeError as exc:
            raise ValueError(f"warehouse table {TABLE}, row ({r[0]}, {r[1]}): params is not JSON ({exc})") from exc
        out[r[1]] = TunedParams(r[0], r[1], params, r[3], float(r[4]), None if r[5] is None else float(r[5]),
                                int(r[6]), int(r[7]), int(r[8]), int(r[9]), r[10], r[11])
    return out


def interaction_count(cfg: GenreConfig) -> int:
    """Rows in ``interactions`` now (compared with ``data_rows`` by ``tune.when_data_grew``)."""
    with connect(cfg, read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM interactions").fetchall()[0][0])
