"""``genre tune``: one Optuna study per model in ``tune.models`` on the validation split, best parameters stored.

Per model: TPE seeded from ``train.seed``, median pruning on the per-epoch validation metric, at most
``tune.n_trials`` trials and ``tune.timeout_s`` seconds. The first trial is the configured parameters (and the
second the previously stored best, when there is one), so the stored result never does worse on validation
than what the config already gives. Parameters set with ``--set`` stay fixed during the search.

MLflow: a parent run ``tune-<time>``; under it one run per model (the study: best value and parameters, the
optimisation-history and parameter-importance plots) and under that one run per trial (its parameters,
per-epoch validation curve, value and state).
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from genre_core.config import GenreConfig, explicit_overrides, flatten
from genre_core.device import resolve_device, torch_threads
from genre_core.models.pipeline import Prepared, prepare
from genre_core.tuning.objective import run_trial, validation_view
from genre_core.tuning.schedule import retune_reason
from genre_core.tuning.spaces import suggest
from genre_core.tuning.store import TunedParams, interaction_count, load_tuned, save_tuned

log = logging.getLogger("genre.tune")
CATCH = (ValueError, RuntimeError)  # a bad point of the space fails its trial, not the study


def _search_space(cfg: GenreConfig, model: str) -> tuple[dict[str, Any], list[str]]:
    """The effective space minus the parameters pinned by ``--set`` (returned as the second item)."""
    pinned = explicit_overrides(cfg)
    space, fixed = {}, []
    for name, dim in cfg.tune.space(model).items():
        key = f"train.{model}.{name}"
        if any(key == p or key.startswith(p + ".") for p in pinned):
            fixed.append(name)
        else:
            space[name] = dim
    return space, fixed


def _seed_points(cfg: GenreConfig, model: str, space: dict[str, Any], stored: TunedParams | None) -> list[dict]:
    section = cfg.train.section(model).model_dump(mode="json")
    points = [{k: section[k] for k, dim in space.items() if dim.contains(section[k])}]
    if stored is not None:
        prev = {k: v for k, v in stored.params.items() if k in space and space[k].contains(v)}
        if prev and prev != points[0]:
            points.append(prev)
    return points


def tune_model(cfg: GenreConfig, model: str, view: Prepared, device: torch.device, parent_id: str,
               stored: TunedParams | None, rows: int, progress: bool) -> dict[str, Any]:
    """Run the study of ``model``; store the best parameters; return its summary."""
    import optuna  # noqa: PLC0415

    from genre_core.tracking import RunLogger, flat_metrics, mlflow_key  # noqa: PLC0415
    from genre_core.tuning import plots  # noqa: PLC0415

    tc, t0 = cfg.tune, time.perf_counter()
    space, fixed = _search_space(cfg, model)
    if not space:
        raise ValueError(f"tune: every parameter of {model}'s search space is pinned by --set; nothing to tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"{cfg.dataset.name}:{model}"
    study = optuna.create_study(
        study_name=name, direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.train.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=tc.pruner_startup_trials,
                                           n_warmup_steps=tc.pruner_warmup_epochs))
    for point in _seed_points(cfg, model, space, stored):
        study.enqueue_trial(point, skip_if_exists=True)
    run = RunLogger(cfg, f"tune-{model}", parent_run_id=parent_id,
                    tags={"genre.stage": "tune", "genre.model": model})
    key = mlflow_key(f"valid_{tc.metric}")

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        trun = RunLogger(cfg, f"{model}-trial-{trial.number}", parent_run_id=run.run_id,
                         tags={"genre.stage": "tune", "genre.model": model, "genre.trial": str(trial.number)})
        trun.params({**params, "trial": trial.number})
        curve: list[dict[str, float]] = []
        state = "FAIL"
        try:
            value = run_trial(trial, cfg, model, params, view, device, curve)
            state = "COMPLETE" if math.isfinite(value) else "FAIL"
            if state == "COMPLETE":
                trun.metrics({key: value})
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except CATCH as exc:
            trun.tags({"genre.error": str(exc)[:500]})
            raise
        finally:
            for r in curve:
                trun.metrics({f"epoch.{key}": r["value"]}, step=int(r["epoch"]))
            trun.tags({"genre.trial_state": state})
            trun.end(ok=state != "FAIL")

    try:
        run.params({"model": model, "metric": tc.metric, "n_trials": tc.n_trials, "timeout_s": str(tc.timeout_s),
                    "seed": cfg.train.seed, "fixed_by_set": ",".join(fixed) or "-",
                    **{f"space.{k}": v.model_dump_json(exclude_none=True) for k, v in space.items()}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=tc.n_trials, timeout=tc.timeout_s, catch=CATCH,
                           show_progress_bar=progress, gc_after_trial=False)
        states = [t.state.name for t in study.trials]
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and math.isfinite(t.value)]
        if not done:
            errors = {t.number: t.system_attrs.get("fail_reason", "") for t in study.trials}
            raise RuntimeError(f"tune {model}: no trial completed ({states.count('PRUNED')} pruned, "
                               f"{states.count('FAIL')} failed: {errors})")
        best = max(done, key=lambda t: t.value)
        baseline = study.trials[0].value if study.trials[0].state.name == "COMPLETE" else None
        result = TunedParams(cfg.dataset.name, model, dict(best.params), tc.metric, float(best.value),
                             baseline, best.number, len(study.trials), states.count("PRUNED"), rows, run.run_id,
                             datetime.now(UTC).replace(tzinfo=None))
        run.metrics(flat_metrics({f"best_valid_{tc.metric}": result.value, "best_trial": best.number,
                                  f"baseline_valid_{tc.metric}": baseline, "trials": len(states),
                                  "pruned": states.count("PRUNED"), "failed": states.count("FAIL")}))
        run.params({f"best.{k}": v for k, v in best.params.items()})
        with tempfile.TemporaryDirectory() as tmp:
            plots.optimisation_history(study, tc.metric, Path(tmp) / "optimisation_history.png")
            plots.param_importances(study, Path(tmp) / "param_importances.png")
            run.artifacts(Path(tmp), "plots")
        run.json_artifact({"best": best.params, "value": best.value, "trials": [
            {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params} for t in study.trials]},
            "study.json")
        save_tuned(cfg, result)
        run.end(ok=True)
    except Exception:
        run.end(ok=False)
        raise
    log.info("tune %s: best %s=%.4f (trial %d of %d; configured %s)", model, tc.metric, result.value,
             best.number, len(states), "n/a" if baseline is None else f"{baseline:.4f}")
    return {"best_value": result.value, "baseline_value": baseline, "best_trial": best.number,
            "trials": len(states), "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"), "params": best.params, "fixed_by_set": fixed,
            "seconds": round(time.perf_counter() - t0, 2), "run_id": run.run_id}


def run_tune(cfg: GenreConfig, progress: bool = True, force: bool = True) -> dict[str, Any]:
    """Tune every model of ``tune.models`` (``force``), or, for the nightly (``force=False``), only those whose
    stored result is due (``genre_core.tuning.schedule``) and only when ``tune.enabled``.

    Returns {"models": {model: summary}, "reused": {model: reason}, "skipped", "reason", "split",
    "parent_run_id", "seconds"}."""
    t0 = time.perf_counter()
    if not force and not cfg.tune.enabled:
        return {"models": {}, "reused": {}, "skipped": True, "reason": "tune.enabled is false"}
    from genre_core.models.registry import get_model_class  # noqa: PLC0415

    for model in cfg.tune.models:
        get_model_class(model)  # an unknown name fails before any work, listing the valid ones
    stored = load_tuned(cfg, cfg.tune.models)
    rows = interaction_count(cfg)
    now = datetime.now(UTC).replace(tzinfo=None)
    due, reused = {}, {}
    for model in cfg.tune.models:
        reason = "genre tune" if force else retune_reason(cfg.tune, stored.get(model), rows, now)
        if reason is None:
            reused[model] = f"reusing parameters tuned {stored[model].tuned_at:%Y-%m-%d %H:%M} UTC"
        else:
            due[model] = reason
    if not due:
        return {"models": {}, "reused": reused, "skipped": True, "seconds": round(time.perf_counter() - t0, 3),
                "reason": "; ".join(f"{m}: {r}" for m, r in reused.items())}
    from genre_core.tracking import RunLogger  # noqa: PLC0415

    device = resolve_device(cfg.train.device)
    view = validation_view(prepare(cfg))
    parent = RunLogger(cfg, f"tune-{time.strftime('%Y%m%dT%H%M%S')}", tags={"genre.stage": "tune"})
    results: dict[str, Any] = {}
    try:
        parent.params({**flatten(cfg), **{f"split.{k}": v for k, v in view.split.summary().items()},
                       "device": str(device), **{f"reason.{m}": r for m, r in due.items()}})
        with torch_threads(cfg.train.cpu_threads, device):
            for model in due:
                log.info("tune %s (%s)", model, due[model])
                results[model] = tune_model(cfg, model, view, device, parent.run_id, stored.get(model), rows,
                                            progress)
        parent.json_artifact(results, "tune_results.json")
        parent.end(ok=True)
    except Exception:
        parent.end(ok=False)
        raise
    return {"models": results, "reused": reused, "skipped": False, "reasons": due, "split": view.split.summary(),
            "parent_run_id": parent.run_id, "seconds": round(time.perf_counter() - t0, 3)}
