"""Config section ``tune``: which models ``genre tune`` searches, its budget, and per-model search spaces.

A search space maps parameter names of a model's config section (``train.<model>``) to a distribution.
Defaults live in ``genre_core.tuning.spaces``; ``tune.spaces.<model>.<param>`` in YAML replaces the default
distribution of that parameter (or adds one), and ``null`` drops it. Every model and parameter name is checked
when the config loads, so a typo fails before any work with the key path in the message.
"""
from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator



G = TypeVar("G", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParamSpace(_Strict):
    """One dimension of a search space: ``float`` / ``int`` in [low, high] (optionally log-scaled or stepped),
    or ``categorical`` over ``choices`` (YAML scalars, lists or null)."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None  # float/int: lower bound (inclusive)
    high: float | None = None  # float/int: upper bound (inclusive)
    log: bool = False  # float/int: sample on a log scale (low must be > 0)
    step: float | None = None  # float/int: grid step (not with log)
    choices: list[Any] | None = None  # categorical: the values tried (scalars or null)

    @model_validator(mode="after")
    def _check(self) -> ParamSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical space needs a non-empty `choices` list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} space needs `low` and `high`")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled space needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("`log` and `step` cannot be combined")
        return self

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this space (used to seed the search with the configured values)."""
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "int" and float(value) != int(value):
            return False
        return float(self.low) <= float(value) <= float(self.high)  # type: ignore[arg-type]


def section_fields(model: str) -> list[str] | None:
    """The parameter names of ``train.<model>`` (the registered model's typed ``Config``), or None when the
    model takes no settings. An unknown model raises ValueError listing the registered ones."""
    from genre_core.models.registry import MODELS  # noqa: PLC0415 - the registry imports the model modules

    fields = sorted(MODELS.get(model).Config.model_fields)
    return fields or None


def with_section(cfg: G, model: str, values: dict[str, Any]) -> G:
    """A deep copy of ``cfg`` (a GenreConfig) whose typed section ``train.<model>`` has ``values`` applied and
    validated against the model's ``Config`` (pydantic ValidationError on a bad value)."""
    out = cfg.model_copy(deep=True)
    section = out.train.section(model)
    setattr(out.train, model, type(section).model_validate({**section.model_dump(), **values}))
    return out


class TuneConfig(_Strict):
    """``genre tune``: Optuna TPE (seeded from ``train.seed``) with median pruning on the validation split."""

    enabled: bool = False  # the nightly runs the tune stage (it re-tunes only when due, see below)
    use_tuned: bool = True  # `genre train` applies the stored best parameters (explicit --set still wins)
    # models searched, each in its own study (the default blend's trainable members; the blend uses their results)
    models: list[str] = Field(default_factory=lambda: ["hybrid", "sasrec"])
    n_trials: int = Field(20, ge=1)  # trials per model
    timeout_s: float | None = Field(3600.0, gt=0)  # wall-clock budget per model (None: trials only)
    metric: str = "ndcg@10"  # validation metric maximised (ndcg@K, recall@K, hitrate@K, mrr)
    max_epochs: int | None = Field(None, ge=1)  # cap on epochs per trial for iterative models (None: config)
    pruner_startup_trials: int = Field(4, ge=0)  # trials completed before pruning starts
    pruner_warmup_epochs: int = Field(2, ge=0)  # epochs of a trial that are never pruned
    every_days: float | None = Field(None, gt=0)  # nightly: re-tune when the stored result is this old
    when_data_grew: float | None = Field(None, gt=0)  # nightly: re-tune when interactions grew by this share
    spaces: dict[str, dict[str, ParamSpace | None]] = Field(default_factory=dict)  # per-model overrides

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models lists a name twice: {self.models}")
        metric = self.metric.split("@")[0]
        if metric not in ("ndcg", "recall", "hitrate", "mrr") or ("@" in self.metric) == (metric == "mrr"):
            raise ValueError(f"metric {self.metric!r}: use ndcg@K, recall@K, hitrate@K or mrr")
        for model, space in self.spaces.items():
            try:
                fields = section_fields(model)
            except ValueError as exc:
                raise ValueError(f"spaces.{model}: {exc}") from None
            if fields is None:
                raise ValueError(f"spaces.{model}: model {model!r} takes no settings to tune")
            for param in space:
                if param not in fields:
                    raise ValueError(f"spaces.{model}.{param}: not a parameter of train.{model} "
                                     f"(valid: {', '.join(fields)})")
        from genre_core.models.registry import MODELS  # noqa: PLC0415 - the registry imports the model modules

        for model in self.models:
            if model not in MODELS:
                raise ValueError(f"models: {MODELS.unknown(model)}")
            if not self.space(model):
                known = [m for m in MODELS.names() if MODELS.get(m).tune_space]
                raise ValueError(f"models: {model!r} has no search space; declare tune.spaces.{model} or a "
                                 f"tune_space on its class (models with default spaces: {', '.join(known)})")
        return self

    def space(self, model: str) -> dict[str, ParamSpace]:
        """The effective search space of ``model``: its default space with ``spaces.<model>`` applied."""
        from genre_core.tuning.spaces import default_space  # noqa: PLC0415 - spaces imports this module

        merged: dict[str, ParamSpace | None] = {**default_space(model), **self.spaces.get(model, {})}
        return {k: v for k, v in merged.items() if v is not None}
