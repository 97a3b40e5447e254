"""The generation loop: budget checks between chunks, results committed every ``write_every`` generations.

A crash or an interrupt keeps every completed generation (the buffer is flushed on the way out); the budget
stops the loop before a chunk that could exceed it, and the summary says which limit was reached.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from genre_core.llm.backends.base import LLMBackend
from genre_core.llm.prompts import Job
from genre_core.llm.store import OutputRow


@dataclass
class RoleStats:
    """Per-role counts of one run (prompts are unique prompt hashes; subjects can share one)."""

    subjects: int = 0
    prompts: int = 0
    cache_hits: int = 0
    calls: int = 0
    ok: int = 0
    failures: int = 0
    pending: int = 0  # left for a later run by the budget
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class Budget:
    """Per-run limits on generations (calls), prompt + completion tokens and wall-clock seconds.

    The time limit (``max_seconds``, counted from the budget's creation) is checked before each chunk, so a
    run ends at most one chunk after it; what is left stays pending for the next run."""

    max_calls: int
    max_tokens: int
    max_seconds: float | None = None
    calls: int = 0
    tokens: int = 0
    exhausted: str | None = None  # which limit stopped the run
    started: float = field(default_factory=time.perf_counter)

    def admit(self, costs: Sequence[int]) -> int:
        """How many of the next requests (with these worst-case token costs) fit in what is left."""
        if self.max_seconds is not None and time.perf_counter() - self.started >= self.max_seconds:
            self.exhausted = self.exhausted or f"time_budget_s={self.max_seconds:g} reached"
            return 0
        n, tokens = 0, self.tokens
        for cost in costs:
            if self.calls + n >= self.max_calls:
                self.exhausted = self.exhausted or f"max_calls={self.max_calls} reached"
                break
            if tokens + cost > self.max_tokens:
                self.exhausted = self.exhausted or (
                    f"max_tokens={self.max_tokens} reached ({self.tokens} spent, next prompt needs up to {cost})")
                break
            n, tokens = n + 1, tokens + cost
        return n

    def spend(self, calls: int, tokens: int) -> None:
        self.calls += calls
        self.tokens += tokens


@dataclass
class RunLog:
    """What ``generate_all`` did, for the stage summary."""

    roles: dict[str, RoleStats] = field(default_factory=dict)
    attempts: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # first few failure reasons
    aborted: str | None = None  # why the run stopped early (endpoint down, model broken), if it did

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {role: asdict(s) for role, s in self.roles.items()}


def prompt_text(job: Job) -> str:
    """What ``llm_outputs.prompt`` stores: the exact messages sent, as JSON."""
    return json.dumps({"system": job.request.system, "user": job.request.user}, ensure_ascii=False)


def generate_all(
    backend: LLMBackend,
    jobs: Sequence[Job],
    budget: Budget,
    write: Callable[[list[OutputRow]], None],
    write_every: int,
    log: RunLog,
    progress: bool = True,
    max_consecutive_failures: int = 0,
) -> None:
    """Generate every job in order until done or the budget is spent; ``write`` commits finished rows.

    Jobs the budget leaves out are counted as ``pending`` for their role. Failures are written with their
    reason (status ``failed``) and retried by the next run. After ``max_consecutive_failures`` failures in a
    row (0 = never) the run stops early, so an unreachable endpoint does not burn the budget on retries.
    """
    buffer: list[OutputRow] = []
    streak = 0
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc=f"llm {backend.name}", unit="prompt", disable=not progress)
    pos = 0
    try:
        while pos < len(jobs):
            window = list(jobs[pos:pos + backend.chunk_size])
            n = budget.admit([backend.max_cost(j.request) for j in window])
            if n == 0:
                break
            chunk = window[:n]
            t0 = time.perf_counter()
            results = backend.generate([j.request for j in chunk])
            per_job = (time.perf_counter() - t0) / len(chunk)
            budget.spend(len(chunk), sum(r.tokens for r in results))
            for job, res in zip(chunk, results):
                stats = log.roles[job.role]
                stats.calls += 1
                stats.tokens += res.tokens
                stats.seconds += per_job
                log.attempts += res.attempts
                if res.status == "ok":
                    stats.ok += 1
                    streak = 0
                else:
                    stats.failures += 1
                    streak += 1
                    if len(log.errors) < 5:
                        log.errors.append(f"{job.role} {job.subject_id}: {res.error}")
                buffer.append(OutputRow(backend.name, backend.model_id, job.request.key, job.role, job.subject_id,
                                        prompt_text(job), res.output, res.status, res.error, res.tokens))
            pos += n
            bar.update(n)
            bar.set_postfix(calls=budget.calls, tokens=budget.tokens, failed=sum(s.failures for s in log.roles.values()))
            if len(buffer) >= write_every:
                write(buffer)
                buffer = []
            if max_consecutive_failures and streak >= max_consecutive_failures:
                log.aborted = f"{streak} generations failed in a row (last: {results[-1].error})"
                break
    finally:
        bar.close()
        if buffer:
            write(buffer)
        log.seconds += time.perf_counter() - start
        for job in jobs[pos:]:
            log.roles[job.role].pending += 1
