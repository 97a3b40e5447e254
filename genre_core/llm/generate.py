"""One generation pass shared by the enrich stage and the explanations: look the prompts up in the
``llm_outputs`` cache, count prompts and cache hits per role, and generate what is missing within the per-run
budget, committing finished rows in short transactions (no connection is held during a generation). The budget is
a ``SharedBudget`` on ``$GENRE_HOME/llm_budget.json``, so concurrent runs on one home share ``llm.max_calls`` /
``llm.max_tokens``; its reservation is released when the pass ends.
"""
from __future__ import annotations

from collections.abc import Sequence

from genre_core.config import GenreConfig
from genre_core.llm.backends.base import LLMBackend
from genre_core.llm.prompts import Job
from genre_core.llm.runner import RunLog, generate_all
from genre_core.llm.shared_budget import SharedBudget
from genre_core.llm.store import OutputRow, cached, write_outputs
from genre_core.paths import genre_home
from genre_core.warehouse import connect


def generate_missing(cfg: GenreConfig, backend: LLMBackend, jobs: Sequence[Job], log: RunLog,
                     progress: bool = True) -> SharedBudget:
    """Generate every job of ``jobs`` (deduplicated by prompt hash) whose cached output is not ``ok``.

    Adds to ``log.roles[job.role]``: ``prompts`` (one per job) and ``cache_hits``; ``generate_all`` adds calls,
    failures, pending and tokens. Returns the run's (released) ``SharedBudget`` (``exhausted`` says why it stopped, if it did).
    """
    llm = cfg.llm
    with connect(cfg) as con:
        cache = cached(con, backend.name, backend.model_id, [j.request.key for j in jobs])
    todo: list[Job] = []
    for job in jobs:
        log.roles[job.role].prompts += 1
        if cache.get(job.request.key, ("missing", None))[0] == "ok":
            log.roles[job.role].cache_hits += 1
        else:
            todo.append(job)
    budget = SharedBudget(llm.max_calls, llm.max_tokens, llm.time_budget_s, ledger=genre_home() / "llm_budget.json")

    def write(rows: list[OutputRow]) -> None:
        with connect(cfg) as con:
            write_outputs(con, rows)

    try:
        if todo:
            generate_all(backend, todo, budget, write, llm.write_every, log, progress=progress,
                         max_consecutive_failures=llm.max_consecutive_failures)
    finally:
        budget.release()
    return budget
