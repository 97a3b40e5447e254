"""Default search spaces of ``genre tune``, one per model, keyed by the model's config section name.

Each entry names fields of ``train.<model>``; ranges bracket the shipped defaults (tuned on MovieLens 100K)
widely enough for catalogues with short histories (e.g. Amazon 5-core, median 6 events per user). A new model
gets a space with one line here (or ``tune.spaces.<model>`` in YAML, which also overrides these per parameter).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genre_core.tuning.config import ParamSpace

if TYPE_CHECKING:
    import optuna


def _f(low: float, high: float, log: bool = False) -> ParamSpace:
    return ParamSpace(type="float", low=low, high=high, log=log)


def _i(low: int, high: int, log: bool = False) -> ParamSpace:
    return ParamSpace(type="int", low=low, high=high, log=log)


def _c(*choices: Any) -> ParamSpace:
    return ParamSpace(type="categorical", choices=list(choices))


DEFAULT_SPACES: dict[str, dict[str, ParamSpace]] = {
    "popularity": {"half_life_days": _c(None, 7.0, 30.0, 180.0)},
    "itemknn": {
        "neighbors": _i(10, 400, log=True),
        "shrink": _f(0.0, 100.0),
        "alpha": _f(0.0, 1.0),
        "recency_half_life": _f(0.5, 100.0, log=True),
    },
    "bpr": {
        "dim": _c(32, 64, 128),
        "lr": _f(0.01, 0.5, log=True),
        "weight_decay": _f(1e-4, 0.1, log=True),
    },
    "content": {"recency_half_life": _f(0.5, 100.0, log=True)},
    "hybrid": {
        "dim": _c(32, 64, 128),
        "lr": _f(3e-4, 1e-2, log=True),
        "weight_decay": _f(1e-6, 1e-2, log=True),
        "dropout": _f(0.0, 0.5),
        "id_dropout": _f(0.0, 0.5),
        "recency_half_life": _f(1.0, 50.0, log=True),
        "fusion": _c("sum", "concat", "gated"),
        "history": _c("mean", "attention"),
        "target_window": _i(1, 10),
        "cuts_per_user": _i(2, 8),
    },
}


def suggest(trial: optuna.Trial, space: dict[str, ParamSpace]) -> dict[str, Any]:
    """Draw one point of ``space`` through ``trial`` ({param: value}, ints as int)."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.type == "categorical":
            out[name] = trial.suggest_categorical(name, dim.choices)  # type: ignore[arg-type]
        elif dim.type == "int":
            step = int(dim.step) if dim.step else 1
            out[name] = trial.suggest_int(name, int(dim.low), int(dim.high), step=step, log=dim.log)  # type: ignore[arg-type]
        else:
            out[name] = trial.suggest_float(name, float(dim.low), float(dim.high), step=dim.step, log=dim.log)  # type: ignore[arg-type]
    return out
