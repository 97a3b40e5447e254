"""The tune stage as a thin Prefect task: call ``genre_core.tuning.tuner.run_tune``, log, publish an artifact."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from genre_core.config import GenreConfig
from tasks.artifacts import markdown, md_table
from tasks.retry import stage_task


@stage_task("tune-hyperparameters")
def tune_task(cfg: GenreConfig, force: bool = True) -> dict[str, Any]:
    """Tune (``force``) or re-tune what is due (nightly); no retries: a second try would redo hours of search."""
    from genre_core.tuning.tuner import run_tune

    summary = run_tune(cfg, progress=False, force=force)
    log = get_run_logger()
    if summary.get("skipped"):
        log.info("tune skipped: %s", summary.get("reason"))
        markdown("tune-summary", f"## Tuning skipped\n\n{summary.get('reason')}", "stored parameters reused")
        return summary
    rows = [{"model": m, "configured": s["baseline_value"], "best": s["best_value"], "trial": s["best_trial"],
             "trials": s["trials"], "pruned": s["pruned"], "params": str(s["params"])}
            for m, s in summary["models"].items()]
    for m, s in summary["models"].items():
        log.info("tune %s: valid %s %.4f (configured %s) with %s", m, cfg.tune.metric, s["best_value"],
                 s["baseline_value"], s["params"])
    markdown("tune-summary", f"## Tuning (validation split, metric {cfg.tune.metric})\n\n{md_table(rows)}",
             "best parameters per model, stored for train")
    return summary
