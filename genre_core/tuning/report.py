"""The CLI table of a ``genre tune`` run: per model, configured vs best validation value and the best params."""
from __future__ import annotations

import json
from typing import Any

from rich.table import Table


def tune_table(summary: dict[str, Any]) -> Table:
    """One row per tuned model (validation split only; the test split is never used by tuning)."""
    t = Table("model", "configured (valid)", "best (valid)", "best trial", "trials", "pruned", "failed", "s",
              title="tune: validation split")
    for name, m in summary.get("models", {}).items():
        base = m.get("baseline_value")
        t.add_row(name, "n/a" if base is None else f"{base:.4f}", f"{m['best_value']:.4f}", str(m["best_trial"]),
                  str(m["trials"]), str(m["pruned"]), str(m["failed"]), f"{m['seconds']:.0f}")
    return t


def param_lines(summary: dict[str, Any]) -> list[str]:
    """The stored best parameters per model, and the models whose stored parameters were reused."""
    lines = [f"{name}: best parameters {json.dumps(m['params'], sort_keys=True, default=str)}"
             for name, m in summary.get("models", {}).items()]
    return lines + [f"{name}: {reason}" for name, reason in summary.get("reused", {}).items()]


def source_lines(sources: dict[str, dict[str, str]]) -> list[str]:
    """One line per model saying which parameters came from `genre tune` and which from --set (the rest: config)."""
    lines = []
    for model, src in sources.items():
        by: dict[str, list[str]] = {}
        for param, origin in src.items():
            if origin != "config":
                by.setdefault(origin, []).append(param)
        parts = [f"{', '.join(sorted(params))} from {origin}" for origin, params in by.items()]
        lines.append(f"train.{model}: " + ("; ".join(parts) if parts else "all from config"))
    return lines
