"""The feedback trend: metrics of each published run, oldest first (a PNG logged to MLflow)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SERIES = ("hit_rate", "precision", "recall", "active_share", "coverage")


def trend_plot(history: pl.DataFrame, path: Path) -> Path:
    """One panel per cut-off k: each metric of ``SERIES`` over the published runs (x: publication order,
    labelled with the model version), novelty (bits) on a second axis."""
    ks = sorted(history["k"].unique().to_list()) if history.height else []
    fig = Figure(figsize=(6.0 * max(len(ks), 1), 3.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(len(ks), 1), squeeze=False)[0]
    for ax, k in zip(axes, ks or [None], strict=False):
        part = history.filter(pl.col("k") == k).sort("published_at") if k is not None else history
        xs = list(range(part.height))
        for name in SERIES:
            ax.plot(xs, [v if v is not None else float("nan") for v in part[name].to_list()], marker="o", label=name)
        if part.height:
            ax2 = ax.twinx()
            ax2.plot(xs, [v if v is not None else float("nan") for v in part["novelty"].to_list()], color="grey", linestyle="--", marker="x", label="novelty (bits)")
            ax2.set_ylabel("novelty, bits")
            ax.set_xticks(xs, [f"v{v}\n{str(t)[:16]}" for v, t in zip(part["model_version"], part["published_at"],
                                                                       strict=True)], fontsize=7)
        ax.set_title(f"feedback of published lists @{k}")
        ax.set_ylabel("share")
        handles = [h for a in fig.axes if a is ax or a.get_shared_x_axes().joined(a, ax) for h in a.get_lines()]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
