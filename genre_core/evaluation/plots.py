"""Matplotlib figures logged as MLflow artifacts: training curves and a model comparison (no pyplot state)."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def training_curves(history: list[dict[str, float]], path: Path, title: str) -> Path:
    """Plot every per-epoch series of ``history`` (records with "epoch"; keys containing "valid" on the right,
    losses on the left) into ``path``."""
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in history]
    keys = sorted({k for r in history for k in r} - {"epoch"})
    for key in keys:
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        ax = ax_val if "valid" in key else ax_loss
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=2, label=key)
    for ax, name in ((ax_loss, "training loss"), (ax_val, "validation")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if ax.has_data():
            ax.legend(fontsize=7)
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def comparison_chart(results: dict[str, dict], metrics: list[str], path: Path, title: str) -> Path:
    """Grouped bars: one group per metric (``name`` or ``slice.name``), one bar per model."""
    fig = Figure(figsize=(max(6.0, 1.6 * len(metrics) + 2), 3.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    models = list(results)
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        vals = []
        for m in metrics:
            node = results[model]
            for part in m.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            vals.append(float(node) if isinstance(node, (int, float)) else 0.0)
        xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, vals, width=width, label=model)
    ax.set_xticks(range(len(metrics)), metrics, fontsize=8)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
