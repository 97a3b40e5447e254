"""Human-readable summaries of stage results for the CLI (rich tables)."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from genre_core.security.literal import cell


def _ingest_table(summary: dict[str, Any]) -> Table:
    t = Table("entity", "status", "rows in", "accepted", "rejected", "added", "updated", "source",
              title=f"ingest {summary.get('dataset', '')}")
    for b in summary["batches"]:
        t.add_row(*[cell(v) for v in (b["entity"], b["status"], b["rows_in"], b["rows_accepted"], b["rows_rejected"],
                  b["rows_added"], b.get("rows_updated", 0), b["source"].rsplit("/", 1)[-1])])
    return t


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _train_table(summary: dict[str, Any]) -> Table:
    models = summary.get("models", {})
    keys = ["ndcg@10", "recall@10", "recall@20", "mrr", "auc", "coverage@10"]
    t = Table("model", *keys, "cold-item recall@10", "fit s", title="train: test-split metrics")
    for name, m in models.items():
        cold = m.get("cold_item") or {}
        t.add_row(cell(name), *[_num(m.get(k)) for k in keys], _num(cold.get("recall@10")), _num(m.get("fit_s"), 1))
    return t


def _generic_table(stage: str, summary: dict[str, Any]) -> Table:
    t = Table("key", "value", title=stage)
    for k, v in summary.items():
        t.add_row(cell(k), cell(v))
    return t


def print_summary(stage: str, summary: dict[str, Any]) -> None:
    """Print the summary of one stage (or of the nightly run, stage by stage)."""
    console = Console(markup=False, highlight=False)  # data is printed literally
    if stage == "nightly":
        for name, sub in summary.get("stages", {}).items():
            print_summary(name, sub)
        console.print(f"nightly finished in {summary.get('seconds', '?')} s")
        return
    if stage == "ingest" and "batches" in summary:
        console.print(_ingest_table(summary))
        console.print(cell(f"warehouse totals: {summary.get('totals')}  ({summary.get('seconds')} s)"))
    elif stage == "train" and "models" in summary and not summary.get("skipped"):
        console.print(_train_table(summary))
        if summary.get("registered"):
            console.print(cell(f"registry: {summary['registered']}"))
    else:
        console.print(_generic_table(stage, summary))
