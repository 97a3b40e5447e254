"""One thin task per stage: call the library, log, publish an artifact. No business logic here."""
from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from genre_core.config import GenreConfig
from tasks.artifacts import markdown, md_table, table
from tasks.retry import stage_task

# Every stage task is declared with tasks.retry.stage_task: retries only for transient failures (a refused batch
# is recorded once, not three times) and no result cache (a cached result would skip a needed write).


@stage_task("ingest-dataset", retries=2, retry_delay_seconds=[5, 30])
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


@stage_task("extract-features", retries=1, retry_delay_seconds=10)
def features_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.features.pipeline import run_features

    return _features_artifact(run_features(cfg, progress=False))


def _features_artifact(summary: dict[str, Any]) -> dict[str, Any]:
    rows = [{"modality": m, **{k: v for k, v in s.items() if not isinstance(v, dict | list)}}
            for m, s in summary.items() if isinstance(s, dict)]
    get_run_logger().info("features: %s", rows)
    markdown("features-summary", f"## Feature extraction\n\n{md_table(rows)}", "items embedded/skipped/failed per modality")
    return summary


@stage_task("enrich-with-llm", retries=1, retry_delay_seconds=10)
def enrich_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.llm.pipeline import run_enrich

    summary = run_enrich(cfg, progress=False)
    get_run_logger().info("enrich: %s", summary)
    from genre_core.llm.summary import enrich_rows

    flat = [{"key": k, "value": str(v)} for k, v in summary.items() if k != "roles"]
    markdown("enrich-summary", f"## LLM enrichment\n\n{md_table(enrich_rows(summary))}\n\n{md_table(flat)}",
             "LLM generated / cached / skipped (budget) / failed per role")
    return summary


@stage_task("train-models")
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
    imps = [{"model": name, **m["impression"]} for name, m in summary["models"].items() if m.get("impression")]
    imp_md = f"\n\n### Per-impression metrics (candidates of each test impression)\n\n{md_table(imps)}" if imps else ""
    log.info("registry decision: %s", summary.get("registered"))
    markdown("train-comparison", f"## Model comparison (test split)\n\n{md_table(rows)}\n\n### Cold-item slice\n\n"
             f"{md_table(cold)}{imp_md}\n\n### Registry\n\n`{summary.get('registered')}`", "models compared on the same split")
    return summary


@stage_task("publish-recommendations", retries=2, retry_delay_seconds=[10, 30])
def recommend_task(cfg: GenreConfig) -> dict[str, Any]:
    from genre_core.recommend.pipeline import run_recommend

    return _recommend_artifact(run_recommend(cfg, progress=False))


def _recommend_artifact(summary: dict[str, Any]) -> dict[str, Any]:
    get_run_logger().info("recommend: %s", summary)
    flat = [{"key": k, "value": str(v)} for k, v in summary.items()]
    markdown("recommend-run", f"## Published recommendations\n\n{md_table(flat)}", "the published run")
    return summary


# --- partitioned stages (execution.runner = dask): plan in the flow process, partitions on the task runner,
# --- gather and write in the flow process. Partition tasks retry once: a lost worker is a transient failure.

@stage_task("plan-features")
def plan_features_task(cfg: GenreConfig) -> list[Any]:
    from genre_core.features.partitioned import plan_features

    plans = plan_features(cfg)
    get_run_logger().info("features plan: %s", {p.modality: len(p.todo) for p in plans})
    return plans


@stage_task("embed-partition", retries=1, retry_delay_seconds=5)
def embed_partition_task(cfg: GenreConfig, part: Any) -> Any:
    from genre_core.features.partitioned import embed_partition

    return embed_partition(cfg, part)


@stage_task("write-features", retries=1, retry_delay_seconds=10)
def write_features_task(cfg: GenreConfig, plans: list[Any], slices: list[list[Any]]) -> dict[str, Any]:
    from genre_core.features.partitioned import write_partitions

    return _features_artifact({p.modality: write_partitions(cfg, p, s) for p, s in zip(plans, slices, strict=True)})


@stage_task("plan-recommendations", retries=1, retry_delay_seconds=10)
def plan_recommend_task(cfg: GenreConfig) -> Any:
    from genre_core.recommend.pipeline import prepare_champion

    job = prepare_champion(cfg)
    get_run_logger().info("recommend plan: %s users, model %s v%s", job.plan.n_users, job.model_name, job.model_version)
    return job


@stage_task("score-user-partition", retries=1, retry_delay_seconds=5)
def score_users_task(cfg: GenreConfig, model: Any, part: Any) -> Any:
    from genre_core.recommend.pipeline import score_users

    return score_users(cfg, model, part)


@stage_task("score-similar-partition", retries=1, retry_delay_seconds=5)
def score_similar_task(cfg: GenreConfig, model: Any, bounds: tuple[int, int], budget: int) -> Any:
    from genre_core.recommend.pipeline import score_similar

    return score_similar(cfg, model, bounds[0], bounds[1], budget)


@stage_task("publish-gathered-recommendations", retries=2, retry_delay_seconds=[10, 30])
def publish_gathered_task(cfg: GenreConfig, job: Any, parts: list[Any], similar: list[Any]) -> dict[str, Any]:
    from genre_core.recommend.pipeline import finish_recommend

    return _recommend_artifact(finish_recommend(cfg, job, parts, similar))
