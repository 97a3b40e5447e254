"""The recommend stage: champion model -> top-K for every warehouse user -> atomically published serving file."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from genre_core.config import GenreConfig
from genre_core.paths import serving_path
from genre_core.recommend.data import load_warehouse
from genre_core.recommend.device import resolve_device
from genre_core.recommend.publish import RunRecord, publish
from genre_core.recommend.score import compute_recommendations


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(started: datetime) -> str:
    """Sortable, unique run id: ``20261122T021500Z-1a2b3c4d``."""
    return f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def recommend_with_model(
    cfg: GenreConfig,
    model: Any,
    *,
    model_name: str,
    model_version: str,
    model_run_id: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every warehouse user with ``model`` (the Recommender contract) and publish the run.

    Reads the warehouse through one short read-only connection and writes only the serving file
    (``genre_core.paths.serving_path(cfg)``). Returns the run summary (see ``run_recommend``).
    """
    t0 = time.perf_counter()
    started = _utcnow()
    rc = cfg.recommend
    device = resolve_device(rc.device)
    data = load_warehouse(cfg)
    if data.users.height == 0:
        raise ValueError("the warehouse has no users: run `genre ingest` first")
    model = model.to(device)
    result = compute_recommendations(model, data, rc, device=device, progress=progress)
    t_scored = time.perf_counter()
    run = RunRecord(
        run_id=new_run_id(started), model_name=model_name, model_version=str(model_version),
        model_run_id=str(model_run_id), k=rc.k, users=result.users, rows=result.recs.height,
        cold_users=result.cold_users, started_at=started, finished_at=_utcnow(),
    )
    path = publish(serving_path(cfg), result.recs, run, similar=result.similar, keep_runs=rc.keep_runs)
    seconds = time.perf_counter() - t0
    publish_s = time.perf_counter() - t_scored
    return {
        "run_id": run.run_id,
        "model_name": model_name,
        "model_version": str(model_version),
        "model_run_id": str(model_run_id),
        "k": rc.k,
        "users": result.users,
        "cold_users": result.cold_users,
        "rows": run.rows,
        **result.stats,
        "scoring_seconds": round(t_scored - t0, 3),
        "publish_seconds": round(publish_s, 3),
        "publish_rows_per_s": round(run.rows / publish_s, 1) if publish_s > 0 else None,
        "seconds": round(seconds, 3),
        "rows_per_s": round(run.rows / seconds, 1) if seconds > 0 else None,
        "serving_path": str(path),
    }


def run_recommend(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """Load the registered ``champion`` (``genre_core.tracking.load_champion``) and publish its top-K run.

    Returns a summary: run_id, model_name, model_version, model_run_id, k, users, cold_users (cold_content,
    cold_popularity), warm_users, rows, similar_rows, device, block_users, seconds, rows_per_s, scoring_seconds,
    publish_seconds, publish_rows_per_s, serving_path.
    """
    from genre_core.tracking import load_champion  # the model stage's registry access

    champion = load_champion(cfg)
    return recommend_with_model(
        cfg, champion.model, model_name=champion.name, model_version=champion.version,
        model_run_id=champion.run_id, progress=progress,
    )
