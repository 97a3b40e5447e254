"""The enrich stage's summary as a table: per role, what was generated, answered from the cache, left for a later
run by the budget (calls, tokens or ``llm.time_budget_s``) and failed, and how long generation took."""
from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from genre_core.security.literal import cell

COLUMNS = ("role", "subjects", "prompts", "generated", "cached", "skipped (budget)", "failed", "tokens", "seconds")
# short terminal headers so the table fits 80 columns (genre_core.report.WIDTH); the artifact keeps COLUMNS
HEADERS = {"subjects": "subj", "prompts": "prompts", "generated": "gen", "cached": "cached",
           "skipped (budget)": "skipped", "failed": "failed", "tokens": "tokens", "seconds": "s"}


def enrich_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per role plus a ``total`` row; ``generated`` = ok generations this run, ``seconds`` = generation
    time (the total row: the whole stage, publishing included)."""
    rows: list[dict[str, Any]] = []
    for role, r in summary.get("roles", {}).items():
        rows.append({"role": role, "subjects": r["subjects"], "prompts": r["prompts"], "generated": r["ok"],
                     "cached": r["cache_hits"], "skipped (budget)": r["pending"], "failed": r["failures"],
                     "tokens": r["tokens"], "seconds": round(r["seconds"], 1)})
    if rows:
        total = {c: sum(row[c] for row in rows) for c in COLUMNS[1:-1]}
        rows.append({"role": "total", **total, "seconds": summary.get("seconds")})
    return rows


def enrich_table(summary: dict[str, Any]) -> Table:
    """A rich table of ``enrich_rows`` with the backend, model, budget and throughput in the caption."""
    t = Table(title=cell(f"enrich: {summary.get('backend')} {summary.get('model')}"), box=box.SIMPLE_HEAD,
              pad_edge=False, collapse_padding=True)
    t.add_column("role", overflow="fold", min_width=8)
    for header in HEADERS.values():
        t.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for row in enrich_rows(summary):
        t.add_row(*[cell(row[c]) for c in COLUMNS])
    notes = [f"{summary.get('items_per_s') or 0} generations/s; skipped: left by the budget for a later run"]
    if summary.get("budget_reason"):
        notes.append(f"budget: {summary['budget_reason']} (the rest runs next time)")
    if summary.get("aborted"):
        notes.append(f"aborted: {summary['aborted']}")
    if summary.get("errors"):
        notes.append(f"first errors: {summary['errors'][:2]}")
    t.caption = "; ".join(notes)
    return t
