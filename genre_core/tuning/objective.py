"""One tuning trial: fit a model with candidate parameters on ``train_inner``, score it on validation.

The test split is never touched: ``validation_view`` hands the tuner a ``Prepared`` whose test parts are empty
and whose only evaluation set is ``valid``; ``valid_only`` refuses any other set. Iterative models report the
validation metric after every evaluated epoch (``trial.report``) so that the pruner can stop a bad trial early.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genre_core.config import GenreConfig
from genre_core.evaluation.evaluate import EvalSet, evaluate
from genre_core.models.pipeline import Prepared
from genre_core.models.registry import build_model
from genre_core.tuning.config import with_section

if TYPE_CHECKING:
    import optuna

VALID = "valid"


def validation_view(prep: Prepared) -> Prepared:
    """``prep`` without anything of the test period: the test, cold-item and cold-user targets are emptied
    and the evaluation sets reduced to ``valid``. Raises ValueError when there is no validation split."""
    valid = prep.eval_sets[VALID]
    if not valid.users.size:
        raise ValueError("tuning needs validation targets: set train.split.valid_fraction > 0 "
                         "(the test split is never used for tuning)")
    none = np.zeros(0, dtype=np.int64)
    split = dataclasses.replace(prep.split, test=prep.split.test.subset(none),
                                test_cold_item=prep.split.test_cold_item.subset(none),
                                test_cold_user=prep.split.test_cold_user.subset(none))
    return dataclasses.replace(prep, split=split, eval_sets={VALID: valid})


def valid_only(es: EvalSet) -> EvalSet:
    """``es`` if it is the validation set; a RuntimeError for any other (the tuner must not see test)."""
    if es.name != VALID:
        raise RuntimeError(f"tuning evaluated on {es.name!r}: only the validation split may be used")
    return es


def with_params(cfg: GenreConfig, model: str, params: dict[str, Any]) -> GenreConfig:
    """A copy of ``cfg`` whose section ``train.<model>`` has ``params`` applied and validated (a bad value
    raises ValueError naming the parameter)."""
    return with_section(cfg, model, params)


def _ks(metric: str) -> list[int]:
    return [int(metric.split("@")[1])] if "@" in metric else [10]


def run_trial(trial: optuna.Trial, cfg: GenreConfig, model_name: str, params: dict[str, Any], view: Prepared,
              device: torch.device, curve: list[dict[str, float]]) -> float:
    """Fit ``model_name`` with ``params`` on the view's ``train_inner`` and return the validation metric
    ``tune.metric`` (iterative models: at the best epoch, reported per epoch for pruning; ``curve`` receives
    {"epoch", "value"} records). Raises ``optuna.TrialPruned`` when the pruner says so."""
    import optuna  # noqa: PLC0415

    tc, metric = cfg.train, cfg.tune.metric
    tcfg = with_params(cfg, model_name, params)
    section = tcfg.train.section(model_name)
    if cfg.tune.max_epochs is not None and "epochs" in type(section).model_fields:
        section.epochs = min(section.epochs, cfg.tune.max_epochs)
    model = build_model(model_name, tcfg.train, view.data.idmap).to(device)
    inner = view.data.with_train(view.split.train_inner)
    valid = valid_only(view.eval_sets[VALID])
    if not model.iterative:
        model.fit(inner)
        value = evaluate(model, valid, _ks(metric), with_auc=False)[metric]
        return float("nan") if value is None else float(value)
    key = f"valid_{metric}"

    def on_epoch(record: dict[str, float]) -> None:
        if key not in record:
            return
        step = int(record["epoch"])
        curve.append({"epoch": step, "value": float(record[key])})
        trial.report(float(record[key]), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {step}: {metric}={record[key]:.4f}")

    report = model.fit(inner, valid, metric=metric, eval_every=tc.eval_every, amp=tc.amp, progress=False,
                       on_epoch=on_epoch)
    trial.set_user_attr("best_epoch", report.best_epoch)
    return float("nan") if report.best_valid is None else float(report.best_valid)
