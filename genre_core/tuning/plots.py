"""Figures of a study, logged to MLflow: the optimisation history and the parameter importances.

Drawn on ``matplotlib.figure.Figure`` objects (no pyplot state), like ``genre_core.evaluation.plots``.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import optuna


def optimisation_history(study: optuna.Study, metric: str, path: Path) -> Path:
    """Each finished trial's validation value (complete: dots, pruned: crosses at their last reported value)
    and the best value so far, by trial number."""
    from optuna.trial import TrialState  # noqa: PLC0415

    fig = Figure(figsize=(7, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values]
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, label="complete")
    ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
               marker="x", s=18, label="pruned (last value)")
    best, xs, ys = -math.inf, [], []
    for t in sorted(done, key=lambda t: t.number):
        best = max(best, float(t.value))  # type: ignore[arg-type]
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"{study.study_name}: optimisation history")
    if ax.has_data():
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def param_importances(study: optuna.Study, path: Path) -> Path | None:
    """Horizontal bars of optuna's parameter importances (fANOVA); None when they cannot be computed (fewer
    than two complete trials, or no parameter varied)."""
    import optuna  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError):
        return None
    if not imp:
        return None
    fig = Figure(figsize=(7, max(2.4, 0.8 + 0.35 * len(imp))))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = list(imp)[::-1]
    ax.barh(names, [imp[n] for n in names])
    ax.set_xlabel("importance (share of the objective's variance)")
    ax.set_title(f"{study.study_name}: parameter importances")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
