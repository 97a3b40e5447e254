"""Search spaces of ``genre tune``: each registered model declares its default space as the class attribute
``tune_space`` (fields of its typed ``Config``); ``tune.spaces.<model>`` in YAML overrides it per parameter.

The built-in ranges bracket the shipped defaults (tuned on MovieLens 100K) widely enough for catalogues with
short histories (e.g. Amazon 5-core, median 6 events per user). A plugin model declares its own ``tune_space``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from genre_core.tuning.config import ParamSpace, section_fields

if TYPE_CHECKING:
    import optuna


def default_space(model: str) -> dict[str, ParamSpace]:
    """The default search space of registered model ``model``: its class attribute ``tune_space`` validated as
    ParamSpaces whose names must be fields of the model's ``Config`` (ValueError naming the class and key)."""
    from genre_core.models.registry import MODELS  # noqa: PLC0415 - the registry imports the model modules

    cls = MODELS.get(model)
    fields = section_fields(model) or []
    out: dict[str, ParamSpace] = {}
    for name, dim in cls.tune_space.items():
        where = f"{cls.__qualname__}.tune_space[{name!r}]"
        if name not in fields:
            raise ValueError(f"{where}: not a field of {cls.Config.__name__} (valid: {', '.join(fields)})")
        try:
            out[name] = dim if isinstance(dim, ParamSpace) else ParamSpace.model_validate(dim)
        except ValidationError as exc:
            raise ValueError(f"{where}: {exc.errors()[0]['msg']}") from None
    return out


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
