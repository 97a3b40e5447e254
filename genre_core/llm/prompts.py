"""Render the three roles' prompts from warehouse rows; hash them for the cache.

Inputs are polars frames (see ``genre_core.llm.store``): items ``[item_id, title, text, category]`` and user
contexts ``[user_id, n_interactions, liked_titles, all_titles, categories]`` (lists of str).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from genre_core.llm.backends.base import LLMRequest
from genre_core.llm.config import LLMConfig
from genre_core.llm.safety import fence_values, system_with_notice


@dataclass(frozen=True)
class Job:
    """One subject's generation: the role, the item or user id, the request, and the fields it was made of."""

    role: str
    subject_id: str
    request: LLMRequest
    fields: dict[str, str] = field(default_factory=dict, compare=False)


def prompt_hash(cfg: LLMConfig, system: str, user: str, max_new_tokens: int) -> str:
    """sha256 over everything that changes the answer: messages, output limit and decoding settings."""
    payload = {
        "system": system, "user": user, "max_new_tokens": max_new_tokens, "temperature": cfg.temperature,
        "repetition_penalty": cfg.repetition_penalty, "no_repeat_ngram_size": cfg.no_repeat_ngram_size,
        "seed": cfg.seed if cfg.temperature > 0 else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def make_job(cfg: LLMConfig, role: str, subject_id: str, values: dict[str, str]) -> Job:
    """Render ``role``'s template with ``values`` (each cleaned, cut and fenced as data) into a hashed request."""
    prompt = cfg.prompt(role)
    user = prompt.user.format(**fence_values(cfg, values))
    system = system_with_notice(prompt.system)
    n = cfg.new_tokens(role)
    request = LLMRequest(prompt_hash(cfg, system, user, n), system, user, n)
    return Job(role, subject_id, request, dict(values))


def _clip(text: str | None, max_chars: int) -> str:
    text = " ".join((text or "").split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    return (cut[: cut.rfind(" ")] if " " in cut else cut) + " ..."


def item_jobs(cfg: LLMConfig, items: pl.DataFrame) -> list[Job]:
    """Content-enricher jobs, one per item that has a title or a text (others have nothing to enrich)."""
    missing = {"item_id", "title", "text", "category"} - set(items.columns)
    if missing:
        raise ValueError(f"items frame lacks columns {sorted(missing)}")
    jobs: list[Job] = []
    for row in items.iter_rows(named=True):
        title, text = (row["title"] or "").strip(), _clip(row["text"], cfg.max_text_chars)
        if not title and not text:
            continue
        category = ", ".join(c.strip() for c in (row["category"] or "").split("|") if c.strip()) or "unknown"
        jobs.append(make_job(cfg, "enrich", str(row["item_id"]),
                             {"title": title or "(untitled)", "text": text or "(no description)",
                              "category": category}))
    return jobs


def top_categories(categories: Iterable[str | None], k: int) -> list[str]:
    """The ``k`` most frequent categories; ``"a|b"`` counts for ``a`` and ``b``; ties keep first appearance."""
    counts: Counter[str] = Counter()
    for cat in categories:
        for part in (cat or "").split("|"):
            if part.strip():
                counts[part.strip()] += 1
    return [c for c, _ in counts.most_common(k)]


def _unique(titles: Iterable[str | None], k: int) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in titles if t and t.strip()))[:k]


def user_jobs(cfg: LLMConfig, users: pl.DataFrame, roles: Iterable[str]) -> list[Job]:
    """Profiler jobs: ``profile`` for users with >= ``cold_start_threshold`` interactions, ``cold_start`` for
    users with fewer (but at least one). Only roles listed in ``roles`` are produced."""
    missing = {"user_id", "n_interactions", "liked_titles", "all_titles", "categories"} - set(users.columns)
    if missing:
        raise ValueError(f"user context frame lacks columns {sorted(missing)}")
    wanted = set(roles)
    jobs: list[Job] = []
    for row in users.iter_rows(named=True):
        n = int(row["n_interactions"] or 0)
        role = "profile" if n >= cfg.cold_start_threshold else "cold_start"
        if n < 1 or role not in wanted:
            continue
        titles = _unique(row["liked_titles"] or [], cfg.history_len)
        if role == "cold_start" and not titles:
            titles = _unique(row["all_titles"] or [], cfg.history_len)  # what little there is
        cats = top_categories(row["categories"] or [], cfg.max_categories)
        if not titles and not cats:
            continue
        values = {"titles": "\n".join(f"- {t}" for t in titles) or "- (none liked yet)",
                  "categories": ", ".join(cats) or "unknown", "n_interactions": str(n)}
        jobs.append(make_job(cfg, role, str(row["user_id"]), values))
    return jobs


def dedupe(jobs: list[Job]) -> list[Job]:
    """One job per prompt hash (the first subject asking keeps it; others share the cached answer)."""
    seen: set[str] = set()
    out: list[Job] = []
    for job in jobs:
        if job.request.key not in seen:
            seen.add(job.request.key)
            out.append(job)
    return out
