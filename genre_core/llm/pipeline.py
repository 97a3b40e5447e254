"""The enrich stage: build the three roles' prompts from the warehouse, generate what the cache lacks (within
the per-run budget), record every result in ``llm_outputs``, then embed the outputs for the model.

Connections are held only to read inputs, to look up the cache, and to commit results in short transactions;
never during a generation.
"""
from __future__ import annotations

import time
from typing import Any

from genre_core.config import GenreConfig
from genre_core.llm.backends import get_backend
from genre_core.llm.embed import Encoder, publish_outputs
from genre_core.llm.generate import generate_missing
from genre_core.llm.prompts import Job, dedupe, item_jobs, user_jobs
from genre_core.llm.runner import RoleStats, RunLog
from genre_core.llm.store import cached, read_items, read_user_contexts
from genre_core.warehouse import connect


def build_jobs(cfg: GenreConfig) -> list[Job]:
    """Every subject's job for the configured roles, in ``llm.roles`` order (items most interacted-with first,
    users by id)."""
    profilers = bool({"profile", "cold_start"} & set(cfg.llm.roles))
    history_split = profilers and cfg.llm.user_history == "training"
    split = None  # the train stage's split, computed once for the profilers and the cold-user generator
    if history_split or "cold_gen" in cfg.llm.roles:
        from genre_core.llm.training_events import training_split  # noqa: PLC0415 - reads the split

        split = training_split(cfg)
    events = None
    if history_split:
        from genre_core.llm.training_events import training_interactions  # noqa: PLC0415

        events = training_interactions(cfg, split=split)
    with connect(cfg) as con:
        items = read_items(con) if "enrich" in cfg.llm.roles else None
        users = read_user_contexts(con, cfg.llm, events) if profilers else None
    by_role: dict[str, list[Job]] = {"enrich": item_jobs(cfg.llm, items) if items is not None else []}
    if "cold_gen" in cfg.llm.roles:
        from genre_core.llm.cold_gen import cold_gen_jobs  # noqa: PLC0415 - reads the split, only when asked

        by_role["cold_gen"] = cold_gen_jobs(cfg, split)
    for job in user_jobs(cfg.llm, users, cfg.llm.roles) if users is not None else []:
        by_role.setdefault(job.role, []).append(job)
    return [job for role in cfg.llm.roles for job in by_role.get(role, [])]


def run_enrich(cfg: GenreConfig, progress: bool = True, encoder: Encoder | None = None) -> dict[str, Any]:
    """Run the enrich stage and return its summary.

    Summary keys: ``skipped`` (+ ``reason``), ``backend``, ``model``, ``calls`` (generations sent),
    ``cache_hits`` (prompts answered from ``llm_outputs``), ``failures``, ``pending`` (left by the budget),
    ``budget_exhausted`` (bool) and ``budget_reason``, ``tokens`` (spent this run), ``seconds`` (whole stage),
    ``generation_seconds``, ``items_per_s`` (generations per second of generation time), ``aborted`` (why the
    run stopped early after ``llm.max_consecutive_failures`` failures in a row, else None), ``attempts`` (HTTP
    tries incl. retries), ``errors`` (first few reasons), ``roles`` (the same counts per role), ``published``
    (counts per target: ``item_features.text_llm``, ``user_features.profile``, ``items.attributes.enriched``,
    ``user_features.cold_gen``).
    ``encoder`` replaces the features stage's text encoder (tests).
    """
    t0 = time.perf_counter()
    llm = cfg.llm
    if not llm.enabled or llm.backend == "none":
        why = "llm.enabled is false" if not llm.enabled else "llm.backend is 'none'"
        return {"skipped": True, "reason": f"{why}: set llm.enabled=true and llm.backend to transformers or openai"}
    backend = get_backend(llm)
    try:
        all_jobs = build_jobs(cfg)
        jobs = dedupe(all_jobs)
        log = RunLog(roles={role: RoleStats() for role in llm.roles})
        for job in all_jobs:
            log.roles[job.role].subjects += 1
        budget = generate_missing(cfg, backend, jobs, log, progress=progress)
    finally:
        backend.close()
    published: dict[str, Any] = {}
    if llm.embed or llm.item_attribute:
        with connect(cfg) as con:
            done = cached(con, backend.name, backend.model_id, [j.request.key for j in jobs])
        outputs = {h: out for h, (status, out) in done.items() if status == "ok" and out}
        published = publish_outputs(cfg, [j for j in all_jobs if j.role != "cold_gen"], outputs, encoder,
                                    progress=progress)
        if llm.embed and "cold_gen" in llm.roles:
            from genre_core.llm.cold_gen import publish_cold_gen  # noqa: PLC0415

            published["user_features.cold_gen"] = publish_cold_gen(cfg, all_jobs, outputs, encoder)
    roles = log.as_dict()
    total = {k: sum(int(r[k]) for r in roles.values()) for k in ("calls", "cache_hits", "failures", "pending", "tokens")}
    return {
        "skipped": False, "backend": backend.name, "model": backend.model_id, **total,
        "budget_exhausted": budget.exhausted is not None and total["pending"] > 0,
        "budget_reason": budget.exhausted if total["pending"] > 0 else None,
        "seconds": round(time.perf_counter() - t0, 2), "generation_seconds": round(log.seconds, 2),
        "items_per_s": round(total["calls"] / log.seconds, 3) if log.seconds > 0 and total["calls"] else None,
        "aborted": log.aborted, "attempts": log.attempts, "errors": log.errors, "roles": roles, "published": published,
    }
