"""MLflow tracking and the model registry.

The store defaults to SQLite under ``$GENRE_HOME/mlflow`` (artifacts in ``$GENRE_HOME/mlflow/artifacts``);
``tracking.uri`` points anywhere else. A model version's source is the run's ``model`` artifact folder (the
``Recommender.save`` layout), so loading needs nothing but MLflow and this package. The alias ``champion``
moves to a new version only when it beats the current champion on ``tracking.champion_metric``; the
decision is written as tags on the version and the run either way.

mlflow is imported lazily, with ``MLFLOW_DISABLE_TELEMETRY=true`` unless the caller set it.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genre_core.config import GenreConfig
from genre_core.paths import genre_home

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from genre_core.models.base import Recommender

CHAMPION_ALIAS = "champion"
MODEL_ARTIFACT = "model"


@dataclass
class ChampionModel:
    """The registered champion, loaded: the model, its registered name, version and MLflow run id."""

    model: Recommender
    name: str
    version: str
    run_id: str


def tracking_uri(cfg: GenreConfig) -> str:
    """``tracking.uri`` or ``sqlite:///$GENRE_HOME/mlflow/mlflow.db`` (the folder is created)."""
    if cfg.tracking.uri:
        return cfg.tracking.uri
    folder = genre_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def artifact_location(cfg: GenreConfig) -> str | None:
    """Where new experiments keep artifacts: ``$GENRE_HOME/mlflow/artifacts`` for the default store, else
    the server's default (None)."""
    if cfg.tracking.uri:
        return None
    return (genre_home() / "mlflow" / "artifacts").resolve().as_uri()


def _quiet_env() -> None:
    """Telemetry off unless the caller decided otherwise; called before any mlflow import."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def client(cfg: GenreConfig) -> MlflowClient:
    """An MlflowClient on the configured store (tracking and registry)."""
    _quiet_env()
    from mlflow import MlflowClient  # noqa: PLC0415 - heavy import, only when tracking

    uri = tracking_uri(cfg)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(c: MlflowClient, cfg: GenreConfig) -> str:
    """The id of ``tracking.experiment``, created on first use."""
    exp = c.get_experiment_by_name(cfg.tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(cfg.tracking.experiment, artifact_location=artifact_location(cfg))


def mlflow_key(name: str) -> str:
    """MLflow metric names allow no '@': ``ndcg@10`` -> ``ndcg_at_10``; slices join with '.'."""
    return name.replace("@", "_at_")


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metric dicts -> {"ndcg_at_10": .., "cold_item.ndcg_at_10": ..}; None/NaN/non-numbers dropped."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(flat_metrics(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            out[mlflow_key(f"{prefix}{k}")] = float(v)
    return out


def metric_value(metrics: dict[str, Any], name: str) -> float | None:
    """``ndcg@10`` or a slice path such as ``cold_item.recall@10`` read from a run_train metrics dict."""
    node: Any = metrics
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and node is not None else None


def _champion_version(c: MlflowClient, name: str) -> Any | None:
    _quiet_env()
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return c.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def champion_info(cfg: GenreConfig) -> dict[str, Any] | None:
    """{"version", "run_id", "metric", "value"} of the current champion, or None when there is none."""
    c = client(cfg)
    mv = _champion_version(c, cfg.tracking.registered_model)
    if mv is None:
        return None
    key = mlflow_key(cfg.tracking.champion_metric)
    value = c.get_run(mv.run_id).data.metrics.get(key)
    return {"version": str(mv.version), "run_id": mv.run_id, "metric": cfg.tracking.champion_metric, "value": value}


def register_model(cfg: GenreConfig, run_id: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Register the run's ``model`` artifact as a new version of ``tracking.registered_model`` and move the
    ``champion`` alias to it only if it beats the current champion on ``tracking.champion_metric``
    (higher is better; the first version always wins). Returns {"version", "champion", "reason"}."""
    _quiet_env()
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    c = client(cfg)
    name, metric = cfg.tracking.registered_model, cfg.tracking.champion_metric
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="GENRE hybrid recommender (collaborative + content)")
    new_value = metric_value(metrics, metric)
    if new_value is None:
        raise ValueError(f"tracking.champion_metric {metric!r} is not among the model's metrics")
    source = f"{c.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
    from genre_core.champion_guard import check_loadable, sync_local_artifacts  # noqa: PLC0415
    from genre_core.locking import file_lock  # noqa: PLC0415

    sync_local_artifacts(source)  # the files are on disk before any alias can point at them
    broken = check_loadable(c, run_id, MODEL_ARTIFACT)
    if broken:
        raise RuntimeError(f"model of run {run_id} cannot be loaded back ({broken}); not registered, champion unchanged")
    with file_lock(genre_home() / "champion.lock"):  # compare-and-set: the decision and the move are one step
        current = champion_info(cfg)
        mv = c.create_model_version(name, source=source, run_id=run_id)
        gone = current is not None and check_loadable(c, current["run_id"], MODEL_ARTIFACT)
        if current is None or current["value"] is None:
            promote, reason = True, f"first champion: {metric}={new_value:.4f}"
        elif gone:
            promote, reason = True, f"promoted: v{current['version']} cannot be loaded any more ({gone})"
        elif new_value > current["value"]:
            promote = True
            reason = f"promoted: {metric}={new_value:.4f} beats v{current['version']} ({current['value']:.4f})"
        else:
            promote = False
            reason = f"kept v{current['version']}: {metric}={new_value:.4f} does not beat {current['value']:.4f}"
        now = _champion_version(c, name)
        if (str(now.version) if now else None) != (current["version"] if current else None):
            raise RuntimeError(f"champion of {name!r} changed during registration (another run); v{mv.version} "
                               "registered but not promoted: re-run train")
        if promote:
            c.set_registered_model_alias(name, CHAMPION_ALIAS, mv.version)
    for key, value in (("champion_decision", reason), ("promoted", str(promote).lower()),
                       ("champion_metric", metric), ("champion_metric_value", f"{new_value:.6f}")):
        c.set_model_version_tag(name, mv.version, key, value)
        c.set_tag(run_id, f"genre.{key}", value)
    return {"version": str(mv.version), "champion": promote, "reason": reason}


def load_champion(cfg: GenreConfig) -> ChampionModel:
    """Download and load the ``champion`` version of ``tracking.registered_model`` (on the CPU).

    Raises LookupError when no version carries the alias (run ``genre train`` first).
    """
    from genre_core.models.base import Recommender  # noqa: PLC0415 - torch only when loading

    c = client(cfg)
    name = cfg.tracking.registered_model
    mv = _champion_version(c, name)
    if mv is None:
        raise LookupError(f"no '{CHAMPION_ALIAS}' version of registered model {name!r} at {tracking_uri(cfg)}: "
                          "run `genre train` first")
    with tempfile.TemporaryDirectory(prefix="genre-champion-") as tmp:
        local = c.download_artifacts(mv.run_id, MODEL_ARTIFACT, tmp)
        model = Recommender.load(Path(local), map_location="cpu")
    return ChampionModel(model=model, name=name, version=str(mv.version), run_id=mv.run_id)


class RunLogger:
    """One MLflow run (optionally nested under a parent) written through the client API."""

    def __init__(self, cfg: GenreConfig, run_name: str, parent_run_id: str | None = None,
                 tags: dict[str, str] | None = None) -> None:
        self.client = client(cfg)
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(experiment_id(self.client, cfg), run_name=run_name, tags=all_tags)
        self.run_id: str = run.info.run_id

    def params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param  # noqa: PLC0415

        from genre_core.security.redact import redact  # noqa: PLC0415

        items = [Param(k, redact(v)[:6000]) for k, v in sorted(params.items())]  # the config, secrets masked
        for s in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[s: s + 100])

    def metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for s in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[s: s + 500])

    def tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def artifacts(self, local_dir: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def json_artifact(self, obj: Any, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            from genre_core.security.redact import redact  # noqa: PLC0415

            (Path(tmp) / filename).write_text(redact(json.dumps(obj, indent=2, default=str)), encoding="utf-8")
            self.client.log_artifact(self.run_id, str(Path(tmp) / filename))

    def end(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")
