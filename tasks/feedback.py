"""The feedback task: compute/store/log the feedback rows, show the trend as Prefect artifacts."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from genre_core.config import GenreConfig
from tasks.artifacts import markdown, md_table, table
from tasks.retry import stage_task

TREND_COLUMNS = ("run_id", "model_version", "published_at", "k", "users_shown", "users_active", "hit_rate",
                 "precision", "recall", "coverage", "novelty")


@stage_task("score-published-lists")
def feedback_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.feedback.pipeline import run_feedback
    from genre_core.feedback.store import read_feedback
    from genre_core.warehouse import connect

    summary = run_feedback(cfg, progress=False)
    log = get_run_logger()
    if summary.get("reason"):
        log.info("feedback: %s", summary["reason"])
    log.info("feedback: %d new/changed rows, %s unchanged", len(summary["rows"]), summary.get("unchanged"))
    with connect(cfg, read_only=True) as con:
        try:
            trend = read_feedback(con)
        except Exception:  # noqa: BLE001 - the table does not exist before the first scored run
            trend = None
    rows = [{c: (str(r[c]) if c == "published_at" else r[c]) for c in TREND_COLUMNS}
            for r in (trend.to_dicts() if trend is not None else [])]
    table("feedback-trend", rows, "feedback of every published run over time (warehouse table feedback)")
    where = (f"MLflow run `{summary['mlflow_run_id']}`, artifact `{summary['trend_png']}`"
             if summary.get("mlflow_run_id") else "no new MLflow run (nothing changed)")
    markdown("feedback-summary", f"## Feedback of published lists\n\n{md_table(rows[-10:])}\n\nTrend plot: {where}."
             + (f"\n\n{summary['reason']}" if summary.get("reason") else ""), "published lists vs what users did next")
    return summary
