"""Human-readable summaries of stage results for the CLI: rich tables that fit an 80-column terminal (short
headers, 4-digit numbers, nested results flattened to ``key.sub`` rows, long values folded, never cut)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from genre_core.security.literal import cell

WIDTH = 80  # the terminal width the tables are laid out for


def _ingest_table(summary: dict[str, Any]) -> Table:
    t = Table(title=cell(f"ingest {summary.get('dataset', '')}"), box=box.SIMPLE_HEAD, pad_edge=False,
              collapse_padding=True)
    for header in ("entity", "status", "rows in", "accepted", "rejected", "added", "updated"):
        t.add_column(header, overflow="fold", min_width=len(header))
    t.add_column("source", overflow="fold")  # long file names fold onto the next line, never cut
    for b in summary["batches"]:
        t.add_row(*[cell(v) for v in (b["entity"], b["status"], b["rows_in"], b["rows_accepted"], b["rows_rejected"],
                  b["rows_added"], b.get("rows_updated", 0), b["source"].rsplit("/", 1)[-1])])
    return t


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _train_table(summary: dict[str, Any]) -> Table:
    models = summary.get("models", {})
    keys = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@20": "R@20", "mrr": "MRR", "auc": "AUC",
            "coverage@10": "cov@10"}
    t = Table(title="train: test-split metrics", caption="cold R@10: recall@10 on the cold-item slice",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("model", overflow="fold", min_width=8)
    for header in (*keys.values(), "cold R@10", "fit s"):
        t.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for name, m in models.items():
        cold = m.get("cold_item") or {}
        t.add_row(cell(name), *[_num(m.get(k), 3) for k in keys], _num(cold.get("recall@10"), 3), _num(m.get("fit_s"), 1))
    return t


def _train_lists_table(summary: dict[str, Any]) -> Table:
    keys = {"precision@10": "P@10", "f1@10": "F1@10", "diversity@10": "div@10", "novelty@10": "nov@10",
            "rmse": "RMSE", "mae": "MAE"}
    t = Table(title="train: lists and rating head (test split)",
              caption="div: intra-list diversity; nov: novelty (bits); rated: test events with a rating; "
                      "n/a: no rating head",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("model", overflow="fold", min_width=8)
    for header in (*keys.values(), "rated"):
        t.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for name, m in summary.get("models", {}).items():
        t.add_row(cell(name), *[_num(m.get(k), 3) for k in keys], str(m.get("n_ratings") or "n/a"))
    return t


def _impression_table(summary: dict[str, Any]) -> Table | None:
    """Per-impression metrics (MIND benchmark style) where the test split has impressions."""
    rows = {n: m["impression"] for n, m in summary.get("models", {}).items() if m.get("impression")}
    if not rows:
        return None
    keys = {"auc": "AUC", "mrr": "MRR", "ndcg@5": "nDCG@5", "ndcg@10": "nDCG@10"}
    n = next(iter(rows.values())).get("n_impressions")
    t = Table(title="train: per-impression metrics", caption=f"{n} test impressions, their candidates only",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("model", overflow="fold", min_width=8)
    for header in keys.values():
        t.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for name, m in rows.items():
        t.add_row(cell(name), *[_num(m.get(k), 3) for k in keys])
    return t


def _feedback_table(summary: dict[str, Any]) -> Table:
    keys = {"k": "k", "users_shown": "shown", "users_active": "active", "hit_rate": "hit", "precision": "P",
            "recall": "R", "coverage": "cov", "novelty": "nov"}
    t = Table(title="feedback: published lists vs the interactions ingested since",
              caption="hit/P/R at k over users with new positives; cov: catalogue share", box=box.SIMPLE_HEAD,
              pad_edge=False, collapse_padding=True)
    t.add_column("run", overflow="fold", max_width=14)
    t.add_column("ver", overflow="fold", max_width=6)
    for header in keys.values():
        t.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for r in summary["rows"]:
        t.add_row(cell(r["run_id"]), cell(r["model_version"]),
                  *[_num(r[k], 3) if isinstance(r[k], float) else cell(r[k]) for k in keys])
    return t


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and not value:
        return "-"
    return str(value)


def _flat(summary: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) rows of a nested summary; lists of dicts become ``key[i].sub`` rows."""
    for k, v in summary.items():
        if isinstance(v, dict) and v:
            yield from _flat(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                yield from _flat(x, f"{prefix}{k}[{i}].")
        else:
            yield f"{prefix}{k}", _fmt(v)


def _generic_table(stage: str, summary: dict[str, Any]) -> Table:
    t = Table(title=stage, box=box.SIMPLE_HEAD)
    t.add_column("key", overflow="fold", max_width=34)
    t.add_column("value", overflow="fold")
    for k, v in _flat(summary):
        t.add_row(cell(k), cell(v))
    return t


def print_summary(stage: str, summary: dict[str, Any]) -> None:
    """Print the summary of one stage (or of the nightly run, stage by stage)."""
    console = Console(width=min(Console().width, WIDTH), markup=False, highlight=False)  # data printed literally
    if stage == "nightly":
        for name, sub in summary.get("stages", {}).items():
            print_summary(name, sub)
        console.print(f"nightly finished in {summary.get('seconds', '?')} s")
        return
    if stage == "ingest" and "batches" in summary:
        console.print(_ingest_table(summary))
        console.print(cell(f"warehouse totals: {summary.get('totals')}  ({summary.get('seconds')} s)"))
    elif stage == "feedback" and "rows" in summary:
        console.print(_feedback_table(summary))
        console.print(cell(summary.get("reason") or f"{summary.get('unchanged', 0)} rows unchanged; trend plot in "
                           f"MLflow run {summary.get('mlflow_run_id')} ({summary.get('trend_png')})"))
    elif stage == "train" and "models" in summary and not summary.get("skipped"):
        console.print(_train_table(summary))
        console.print(_train_lists_table(summary))
        imp = _impression_table(summary)
        if imp is not None:
            console.print(imp)
        if summary.get("registered"):
            console.print(cell("registry: " + ", ".join(f"{k}={v}" for k, v in summary["registered"].items())))
        if summary.get("param_sources"):
            from genre_core.tuning.report import source_lines

            for line in source_lines(summary["param_sources"]):
                console.print(line)
    elif stage == "tune" and summary.get("models"):
        from genre_core.tuning.report import param_lines, tune_table

        console.print(tune_table(summary))
        for line in param_lines(summary):
            console.print(line)
    elif stage == "enrich" and "roles" in summary:
        from genre_core.llm.summary import enrich_table  # noqa: PLC0415

        console.print(enrich_table(summary))
        if isinstance(pub := summary.get("published"), dict) and pub:
            console.print(cell("published: " + ", ".join(f"{k}={v}" for k, v in pub.items())))
    else:
        console.print(_generic_table(stage, summary))
