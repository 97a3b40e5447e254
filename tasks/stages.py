"""One thin task per stage: call the library, log, publish an artifact. No business logic here."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from genre_core.config import GenreConfig
from tasks.artifacts import markdown, md_table, table

# Stages change the warehouse and are idempotent by their own fingerprints, so Prefect's result cache would be
# unsafe (a cached result would skip a needed write): every stage task uses NO_CACHE.


@task(name="ingest-dataset", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def ingest_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.ingest.pipeline import run_ingest

    summary = run_ingest(cfg, progress=False)
    rows = [{k: b[k] for k in ("entity", "status", "rows_in", "rows_accepted", "rows_rejected", "rows_added", "source")}
            for b in summary["batches"]]
    for b in summary["batches"]:
        get_run_logger().info("%s: %s, in=%s accepted=%s rejected=%s added=%s", b["entity"], b["status"], b["rows_in"],
                              b["rows_accepted"], b["rows_rejected"], b["rows_added"])
    table("ingest-batches", rows, f"ingest of {summary['dataset']}: batches")
    checks = [{"entity": b["entity"], **e} for b in summary["batches"] for e in b.get("validation", {}).get("expectations", [])]
    markdown("ingest-validation", f"## Validation (Great Expectations)\n\n{md_table(checks)}\n\n"
             f"Warehouse totals: `{summary['totals']}`", "GX expectation results per table")
    return summary


@task(name="extract-features", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def features_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.features.pipeline import run_features

    summary = run_features(cfg, progress=False)
    rows = [{"modality": m, **{k: v for k, v in s.items() if not isinstance(v, dict | list)}}
            for m, s in summary.items() if isinstance(s, dict)]
    get_run_logger().info("features: %s", rows)
    markdown("features-summary", f"## Feature extraction\n\n{md_table(rows)}", "items embedded/skipped/failed per modality")
    return summary


@task(name="enrich-with-llm", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def enrich_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.llm.pipeline import run_enrich

    summary = run_enrich(cfg, progress=False)
    get_run_logger().info("enrich: %s", summary)
    flat = [{"key": k, "value": str(v)} for k, v in summary.items()]
    markdown("enrich-summary", f"## LLM enrichment\n\n{md_table(flat)}", "LLM calls, cache hits, failures")
    return summary


@task(name="train-models", cache_policy=NO_CACHE)
def train_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.models.pipeline import run_train

    summary = run_train(cfg, progress=False)
    log = get_run_logger()
    if summary.get("skipped"):
        log.info("train skipped: %s", summary.get("reason"))
        markdown("train-comparison", f"## Training skipped\n\n{summary.get('reason')}", "model comparison")
        return summary
    rows = [{"model": name, **{k: v for k, v in m.items() if isinstance(v, int | float)}}
            for name, m in summary["models"].items()]
    cold = [{"model": name, **{k: v for k, v in (m.get("cold_item") or {}).items() if isinstance(v, int | float)}}
            for name, m in summary["models"].items()]
    log.info("registry decision: %s", summary.get("registered"))
    markdown("train-comparison", f"## Model comparison (test split)\n\n{md_table(rows)}\n\n### Cold-item slice\n\n"
             f"{md_table(cold)}\n\n### Registry\n\n`{summary.get('registered')}`", "models compared on the same split")
    return summary


@task(name="publish-recommendations", retries=2, retry_delay_seconds=[10, 30], cache_policy=NO_CACHE)
def recommend_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.recommend.pipeline import run_recommend

    summary = run_recommend(cfg, progress=False)
    get_run_logger().info("recommend: %s", summary)
    flat = [{"key": k, "value": str(v)} for k, v in summary.items()]
    markdown("recommend-run", f"## Published recommendations\n\n{md_table(flat)}", "the published run")
    return summary
