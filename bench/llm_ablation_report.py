"""Statistics and markdown for ``bench.llm_ablation``: mean ± sample std over seeds, paired deltas vs ``none``.

Input is the run list the command writes to its JSON file: one dict per (seed, model, variant) with
``metrics`` {column label: float or None}. Everything here is pure (no I/O), so the table can be rebuilt from a
JSON file of a killed run (``python -m bench.llm_ablation --report-only --json F``).
"""
from __future__ import annotations

import statistics
from typing import Any

# (column label, evaluation slice or None for the whole test split, metric key of genre_core.evaluation)
METRICS: tuple[tuple[str, str | None, str], ...] = (
    ("NDCG@10", None, "ndcg@10"),
    ("Recall@20", None, "recall@20"),
    ("cold-item NDCG@10", "cold_item", "ndcg@10"),
    ("cold-user NDCG@10", "cold_user", "ndcg@10"),
)
BASELINE = "none"
REFERENCE = "popularity"  # the reference row (one run per seed), not an ablation variant


def _label(variant: str) -> str:
    """Row label of a variant: ``none``, ``all`` or ``+<feature>``."""
    if variant == "text_copy":
        return "+text copy (control)"
    return variant if variant in (BASELINE, "all", REFERENCE) else f"+{variant}"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample std) of ``values``; std is None with fewer than two values, both None when empty."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(mean: float | None, std: float | None, signed: bool = False) -> str:
    if mean is None:
        return "n/a"
    m = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return m if std is None else f"{m} ± {std:.4f}"


def per_seed(runs: list[dict[str, Any]], model: str, variant: str, metric: str) -> dict[int, float]:
    """{seed: value} of one row and metric (runs where the metric is None, e.g. an empty slice, left out)."""
    return {int(r["seed"]): float(r["metrics"][metric]) for r in runs
            if r["model"] == model and r["variant"] == variant and r["metrics"].get(metric) is not None}


def paired(runs: list[dict[str, Any]], model: str, variant: str, metric: str) -> dict[int, float]:
    """{seed: value(variant) - value(none)} over the seeds where both ran on the same split (equal
    ``split_hash``); ValueError when a seed's two runs did not share the split."""
    on, off = per_seed(runs, model, variant, metric), per_seed(runs, model, BASELINE, metric)
    hashes = {(int(r["seed"]), r["variant"]): r.get("split_hash") for r in runs if r["model"] == model}
    out = {}
    for seed in sorted(set(on) & set(off)):
        if hashes[(seed, variant)] != hashes[(seed, BASELINE)]:
            raise ValueError(f"seed {seed}: {model} {variant!r} and {BASELINE!r} ran on different splits "
                             f"({hashes[(seed, variant)]} vs {hashes[(seed, BASELINE)]}); no paired delta")
        out[seed] = on[seed] - off[seed]
    return out


def helps_beyond_spread(deltas: dict[int, float]) -> bool:
    """True when the paired delta is positive on every seed (at least two) and its mean exceeds its std."""
    if len(deltas) < 2:
        return False
    mean, std = mean_std(list(deltas.values()))
    return all(d > 0 for d in deltas.values()) and mean is not None and std is not None and mean > std


def summarise(runs: list[dict[str, Any]], models: list[str], variants: list[str]) -> dict[str, Any]:
    """{model: {variant: {metric: {"mean", "std", "seeds": {seed: v}, "delta": {"mean", "std", "seeds"},
    "helps": bool}}}} for the variants that ran (the baseline has no delta), plus the popularity reference."""
    out: dict[str, Any] = {}
    for model in [*models, REFERENCE]:
        rows = variants if model != REFERENCE else [REFERENCE]
        out[model] = {}
        for v in rows:
            cells = {}
            for name, _, _ in METRICS:
                vals = per_seed(runs, model, v, name)
                if not vals:
                    continue
                mean, std = mean_std(list(vals.values()))
                cell: dict[str, Any] = {"mean": mean, "std": std, "seeds": vals}
                if model != REFERENCE and v != BASELINE:
                    d = paired(runs, model, v, name)
                    dm, ds = mean_std(list(d.values()))
                    cell["delta"] = {"mean": dm, "std": ds, "seeds": d}
                    cell["helps"] = helps_beyond_spread(d)
                cells[name] = cell
            if cells:
                out[model][v] = cells
    return out


def markdown_tables(summary: dict[str, Any], models: list[str], variants: list[str], seeds: list[int],
                    unavailable: dict[str, dict[str, str]], labels: dict[str, str] | None = None) -> list[str]:
    """The three tables (mean ± std; paired delta vs none + helps-beyond-spread; per seed) as markdown lines.
    ``unavailable`` maps model -> variant -> the reason it did not run ("not available in this home (...)")."""
    cols = [m[0] for m in METRICS]
    names = labels or {}

    def label(v: str) -> str:  # the caller's label (e.g. "all (text_llm)") or the default one
        return names.get(v) or _label(v)

    lines: list[str] = []
    for model in models:
        rows = summary.get(model, {})
        lines += [f"### {model}: mean ± sample std over seeds {', '.join(map(str, seeds))}", "",
                  "| variant | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for v in variants:
            if v in unavailable.get(model, {}):
                lines.append(f"| {label(v)} | {unavailable[model][v]} |" + " |" * (len(cols) - 1))
            elif v in rows:
                lines.append(f"| {label(v)} | " + " | ".join(
                    _fmt(rows[v][c]["mean"], rows[v][c]["std"]) if c in rows[v] else "n/a" for c in cols) + " |")
        ref = summary.get(REFERENCE, {}).get(REFERENCE)
        if ref:
            lines.append(f"| popularity (reference) | " + " | ".join(
                _fmt(ref[c]["mean"], ref[c]["std"]) if c in ref else "n/a" for c in cols) + " |")
        lines += ["", f"### {model}: paired delta vs `none` (mean ± std of the per-seed differences, same split "
                  "per seed)", "", "| variant | " + " | ".join(f"Δ {c}" for c in cols) + " | helps beyond spread |",
                  "|---|" + "---|" * (len(cols) + 1)]
        for v in variants:
            if v == BASELINE or v not in rows:
                continue
            helps = [c for c in cols if rows[v].get(c, {}).get("helps")]
            lines.append(f"| {label(v)} | " + " | ".join(
                _fmt(rows[v][c]["delta"]["mean"], rows[v][c]["delta"]["std"], signed=True) if c in rows[v]
                else "n/a" for c in cols) + f" | {', '.join(helps) if helps else 'no'} |")
        lines += ["", f"### {model}: per seed ({' / '.join(map(str, seeds))})", "",
                  "| variant | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for v in [*variants, REFERENCE]:
            src = summary.get(REFERENCE, {}) if v == REFERENCE else rows
            if v not in src:
                continue
            lines.append(f"| {label(v)} | " + " | ".join(
                " / ".join(f"{src[v][c]['seeds'][s]:.4f}" if s in src[v].get(c, {}).get("seeds", {}) else "–"
                           for s in seeds) for c in cols) + " |")
        lines.append("")
    return lines
