"""The train stage: warehouse -> split -> every configured model fitted and evaluated -> MLflow -> registry.

``run_train`` is what the CLI and the Prefect flow call. ``prepare`` and ``fit_and_evaluate`` are the
building blocks (the benchmark uses them to put peer libraries on the very same split and metrics).
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genre_core.config import GenreConfig, flatten
from genre_core.evaluation.evaluate import EvalSet, evaluate, make_eval_set, rating_errors
from genre_core.evaluation.impressions import ImpressionSet, evaluate_impressions, make_impression_set
from genre_core.evaluation.lists import list_inputs
from genre_core.evaluation.split import Split, make_split
from genre_core.device import resolve_device, torch_threads
from genre_core.events import resolve_rules
from genre_core.models.base import Recommender
from genre_core.models.blend import FittedMember
from genre_core.models.data import LLM_ENCODER_MODALITY, LLM_ITEM_MODALITY, TrainData
from genre_core.models.loading import WarehouseFrames, fingerprint, read_warehouse, to_index_space
from genre_core.models.registry import build_model, get_model_class
from genre_core.models.training import FitReport
from genre_core.warehouse import connect, get_state, set_state

SLICES = ("cold_item", "cold_user")
LLM_MODALITIES = (LLM_ITEM_MODALITY, LLM_ENCODER_MODALITY)  # item modalities hybrid-without-llm leaves out
COMPARE = ["ndcg@10", "recall@10", "recall@20", "mrr", "cold_item.recall@10", "cold_user.ndcg@10"]
IMPRESSION_COMPARE = ["impression.auc", "impression.mrr", "impression.ndcg@5", "impression.ndcg@10"]


@dataclass(frozen=True)
class Prepared:
    """Everything models are fitted and evaluated on, built once per run."""

    data: TrainData  # id mapping + content of the whole catalogue; ``train`` empty (use with_train)
    split: Split
    eval_sets: dict[str, EvalSet]  # valid, test, cold_item (ranked among cold items), cold_user
    fingerprint: str
    impressions: ImpressionSet | None = None  # test impressions (clicks + explicit negatives), where they exist


def fingerprint_config(cfg: GenreConfig) -> dict[str, Any]:
    """What of the config a trained model depends on: the train section and the event semantics."""
    out = cfg.train.model_dump(mode="json")
    rules = resolve_rules(cfg)
    if rules:  # no rules: the same fingerprint as before the events section existed
        out["events"] = {k: r.model_dump(mode="json") for k, r in rules.items()}
    return out


def state_key(cfg: GenreConfig) -> str:
    return f"train.fingerprint:{cfg.tracking.registered_model}"


def prepare(cfg: GenreConfig, frames: WarehouseFrames | None = None) -> Prepared:
    """Read the warehouse (unless ``frames`` are given), build index space, split per ``train.split`` and
    the evaluation slices."""
    frames = read_warehouse(cfg) if frames is None else frames
    fp = fingerprint(frames, fingerprint_config(cfg))
    data, events, history = to_index_space(frames, resolve_rules(cfg))
    split = make_split(events, history, data.idmap.n_users, data.idmap.n_items, cfg.train.split, cfg.train.seed)
    sets = {
        "valid": make_eval_set("valid", split.valid),
        "test": make_eval_set("test", split.test),
        "cold_item": make_eval_set("cold_item", split.test_cold_item, candidates=split.cold_items),
        "cold_user": make_eval_set("cold_user", split.test_cold_user),
    }
    imps = make_impression_set(split.test_events) if split.test_events is not None else None
    return Prepared(data=data, split=split, eval_sets=sets, fingerprint=fp,
                    impressions=imps if imps is not None and len(imps) else None)


def evaluate_all(model: Recommender, prep: Prepared, ks: list[int]) -> dict[str, Any]:
    """Overall metrics at the top level plus one dict per slice (same keys; None where a slice is empty) and,
    where the test part has impressions (clicks and explicit negatives at one time), ``impression``: AUC, MRR,
    nDCG@5, nDCG@10 per impression averaged over impressions.

    Besides the ranking metrics: precision/F1@k, diversity@k (content vectors) and novelty@k (training
    popularity) of the top-k lists, and rmse/mae/n_ratings of the rating head on the test split (overall only).
    """
    ks = sorted(set(ks) | {10, 20})
    vectors, popularity = list_inputs(prep.data, prep.split.train)
    extra = {"item_vectors": vectors, "popularity": popularity}
    out: dict[str, Any] = evaluate(model, prep.eval_sets["test"], ks, **extra)
    out.update(rating_errors(model, prep.split.test))
    for name in SLICES:
        out[name] = evaluate(model, prep.eval_sets[name], ks, **extra)
    if prep.impressions is not None:  # MIND-style: rank each test impression's candidates only
        out["impression"] = evaluate_impressions(model, prep.impressions)
    return out


def training_order(cfg: GenreConfig, names: list[str]) -> tuple[list[str], set[str]]:
    """(``names`` with models made of other models (blend) last, so they reuse their members' fits from the same
    pass; the member names those composites need)."""
    order = sorted(names, key=lambda n: hasattr(cfg.train.section(n), "members"))
    return order, {m for n in order for m in getattr(cfg.train.section(n), "members", [])}


def fit_and_evaluate(
    name: str, cfg: GenreConfig, prep: Prepared, device: torch.device, progress: bool = False,
    on_epoch: Callable[[str, dict[str, float]], None] | None = None,
    fitted: dict[str, FittedMember] | None = None,
) -> tuple[Recommender, dict[str, Any], list[dict[str, float]]]:
    """Fit model ``name`` on the split and evaluate it on test and the slices.

    Iterative models early-stop on validation (``train_inner`` -> ``valid``) and, with ``train.refit``, are
    refitted on the whole training part for the best number of epochs. ``fitted``: a dict shared by the calls
    of one training pass (same ``cfg`` and ``prep``): each call records its fits there, and models made of
    other models (the blend) reuse them instead of fitting their members again. Returns (model, metrics with fit_s,
    eval_s, best_epoch, per-epoch records tagged with ``phase``: search (early stopping), refit or fit).
    """
    tc = cfg.train
    kwargs = {"metric": tc.early_stopping_metric, "eval_every": tc.eval_every, "amp": tc.amp, "progress": progress}
    model = build_model(name, tc, prep.data.idmap).to(device)
    records: list[dict[str, float]] = []

    def hook(phase: str) -> Callable[[dict[str, float]], None]:
        def _rec(r: dict[str, float]) -> None:
            records.append({**r, "phase": phase})
            if on_epoch is not None:
                on_epoch(phase, r)
        return _rec

    t0 = time.perf_counter()
    valid = prep.eval_sets["valid"]
    record: FittedMember | None = None
    if model.iterative and valid.users.size:
        rep: FitReport = model.fit(prep.data.with_train(prep.split.train_inner), valid,
                                   on_epoch=hook("search"), **kwargs)
        best_epoch = rep.best_epoch
        record = FittedMember(inner=model, best_epoch=best_epoch)
        if tc.refit:
            model = build_model(name, tc, prep.data.idmap).to(device)
            model.fit(prep.data.with_train(prep.split.train), None, epochs=best_epoch, on_epoch=hook("refit"), **kwargs)
            record.final = model
    else:  # models that use validation without epochs (e.g. blend weights) get it with its training part, and
        # models made of other models (blend) a builder giving each member its own section train.<member>
        extra = {} if model.iterative else {"valid": valid if valid.users.size else None,
                                            "inner": prep.data.with_train(prep.split.train_inner),
                                            "build": lambda member: build_model(member, tc, prep.data.idmap),
                                            "fitted": fitted}
        rep = model.fit(prep.data.with_train(prep.split.train), on_epoch=hook("fit"), **extra, **kwargs)
        best_epoch = rep.best_epoch
        record = FittedMember(final=model, best_epoch=best_epoch)
    if fitted is not None:
        fitted[name] = record
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = evaluate_all(model, prep, tc.k_values)
    metrics.update(fit_s=round(fit_s, 3), eval_s=round(time.perf_counter() - t1, 3), best_epoch=best_epoch)
    if rep.details:  # e.g. the blend's validation metrics (warm and simulated cold) and both weight vectors
        metrics["fit"] = rep.details
    return model, metrics, records


def _log_model_run(cfg: GenreConfig, name: str, model: Recommender, metrics: dict[str, Any],
                   records: list[dict[str, float]], parent: str, fp: str) -> str:
    from genre_core.evaluation.plots import training_curves  # noqa: PLC0415
    from genre_core.tracking import RunLogger, flat_metrics, mlflow_key  # noqa: PLC0415

    run = RunLogger(cfg, name, parent_run_id=parent, tags={"genre.model": name, "genre.fingerprint": fp})
    try:
        run.params({**flatten(cfg), "model": name, "model_class": type(model).__name__})
        for r in records:
            step = int(r["epoch"])
            run.metrics({f"{r['phase']}.{mlflow_key(k)}": v for k, v in r.items()
                         if k not in ("epoch", "phase") and isinstance(v, (int, float))}, step=step)
        run.metrics(flat_metrics(metrics))
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "model")
            run.artifacts(Path(tmp) / "model", "model")
            if records:
                plots = Path(tmp) / "plots"
                plots.mkdir()
                curves = [{"epoch": r["epoch"], **{f"{r['phase']}.{k}": v for k, v in r.items()
                                                    if k not in ("epoch", "phase")}} for r in records]
                training_curves(curves, plots / "training_curves.png", f"{name}: per-epoch loss and validation")
                run.artifacts(plots, "plots")
        run.json_artifact(cfg.model_dump(mode="json"), "config.json")
        run.json_artifact(metrics, "metrics.json")
        run.end(ok=True)
    except Exception:
        run.end(ok=False)
        raise
    return run.run_id


def _skip(cfg: GenreConfig, fp: str) -> dict[str, Any] | None:
    from genre_core.tracking import champion_info  # noqa: PLC0415

    with connect(cfg, read_only=True) as con:
        try:
            stored = get_state(con, state_key(cfg))
        except Exception:  # noqa: BLE001 - an old warehouse without pipeline_state: nothing stored
            stored = None
    if stored != fp:
        return None
    champ = champion_info(cfg)
    if champ is None:
        return None
    from genre_core.champion_guard import check_loadable  # noqa: PLC0415
    from genre_core.tracking import MODEL_ARTIFACT, client  # noqa: PLC0415

    if check_loadable(client(cfg), champ["run_id"], MODEL_ARTIFACT) is not None:
        return None  # the champion's files are gone or broken: retrain instead of skipping
    return {"models": {}, "skipped": True, "fingerprint": fp,
            "reason": f"inputs unchanged since the last training run (fingerprint {fp[:12]}); "
                      f"champion stays v{champ['version']}",
            "registered": {"version": champ["version"], "champion": True, "reason": "unchanged"}}


def _llm_ablation(cfg: GenreConfig, prep: Prepared, device: torch.device, parent: Any, with_llm: dict[str, Any],
                  progress: bool) -> dict[str, dict[str, Any]]:
    """Train the hybrid again without the LLM features on the same split; log it and the deltas to MLflow."""
    off = cfg.model_copy(deep=True)
    off.train.hybrid.use_llm_features = False
    off.train.hybrid.use_cold_gen = False
    off.train.hybrid.use_profiles = False
    plain = [m for m in (off.train.hybrid.modalities or list(prep.data.item_features)) if m not in LLM_MODALITIES]
    if plain:  # nor the LLM item modalities (text_llmenc too, which modalities null would take when stored)
        off.train.hybrid.modalities = plain
    off.train.hybrid.use_llm_text = False
    model, metrics, records = fit_and_evaluate("hybrid", off, prep, device, progress=progress)
    metrics["run_id"] = _log_model_run(off, "hybrid-without-llm", model, metrics, records, parent.run_id,
                                       prep.fingerprint)
    from genre_core.tracking import flat_metrics, metric_value  # noqa: PLC0415

    deltas = {}
    for key in COMPARE:
        on, without = metric_value(with_llm, key), metric_value(metrics, key)
        if on is not None and without is not None:
            deltas[key] = on - without
    parent.metrics(flat_metrics({"ablation_llm_delta": deltas}))
    parent.tags({"genre.llm_ablation": "hybrid (with LLM features) vs hybrid-without-llm"})
    return {"hybrid-without-llm": metrics}


def run_train(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate every model in ``train.models`` on one split, track them in MLflow, register
    ``train.register_model`` and move ``champion`` if it wins.

    Returns {"models": {name: {metrics..., "cold_item": {...}, "cold_user": {...}, "fit_s", "run_id"}},
    "registered": {"version", "champion", "reason"} (or None), "skipped", "fingerprint", "split",
    "parent_run_id", "seconds"}. With unchanged inputs (fingerprint in ``pipeline_state``) and an existing
    champion it returns at once with ``skipped=True`` and a ``reason``.
    """
    t0 = time.perf_counter()
    for name in cfg.train.models:
        get_model_class(name)  # fail fast on a typo before any work
    from genre_core.tuning.apply import apply_tuned  # noqa: PLC0415

    cfg, sources = apply_tuned(cfg)  # stored `genre tune` results over the config; --set still wins
    frames = read_warehouse(cfg)
    if cfg.train.skip_unchanged:
        skipped = _skip(cfg, fingerprint(frames, fingerprint_config(cfg)))
        if skipped is not None:
            skipped["seconds"] = round(time.perf_counter() - t0, 3)
            return skipped
    from genre_core.evaluation.plots import comparison_chart  # noqa: PLC0415
    from genre_core.tracking import RunLogger, flat_metrics, register_model  # noqa: PLC0415

    device = resolve_device(cfg.train.device)
    prep = prepare(cfg, frames)
    parent = RunLogger(cfg, f"train-{time.strftime('%Y%m%dT%H%M%S')}",
                       tags={"genre.fingerprint": prep.fingerprint, "genre.stage": "train"})
    results: dict[str, dict[str, Any]] = {}
    registered = None
    try:
        parent.params({**flatten(cfg), **{f"split.{k}": v for k, v in prep.split.summary().items()},
                       "device": str(device), **{f"param_source.{m}.{k}": v for m, src in sources.items()
                                                  for k, v in src.items() if v != "config"}})
        order, needed = training_order(cfg, cfg.train.models)
        fitted: dict[str, FittedMember] | None = {} if needed else None
        bar = tqdm(order, desc="models", disable=not progress)
        with torch_threads(cfg.train.cpu_threads, device):
            for name in bar:
                bar.set_postfix(model=name)
                model, metrics, records = fit_and_evaluate(name, cfg, prep, device, progress=progress,
                                                           fitted=fitted)
                if fitted is not None and name not in needed:
                    fitted.pop(name, None)
                metrics["run_id"] = _log_model_run(cfg, name, model, metrics, records, parent.run_id,
                                                   prep.fingerprint)
                results[name] = metrics
            fitted = None  # the members' inner fits are not needed past the composites
            hc = cfg.train.hybrid
            if cfg.train.llm_ablation and (hc.use_llm_features or hc.use_cold_gen or hc.use_profiles) \
                    and "hybrid" in results:
                results.update(_llm_ablation(cfg, prep, device, parent, results["hybrid"], progress))
        parent.metrics(flat_metrics({name: {k: v for k, v in m.items() if k != "run_id"}
                                     for name, m in results.items()}))
        with tempfile.TemporaryDirectory() as tmp:
            has_imp = any(m.get("impression") for m in results.values())
            comparison_chart(results, COMPARE + (IMPRESSION_COMPARE if has_imp else []),
                             Path(tmp) / "model_comparison.png", "models on the test split")
            parent.artifacts(Path(tmp), "plots")
        parent.json_artifact(results, "results.json")
        reg = cfg.train.register_model
        if reg is not None and reg in results:
            registered = register_model(cfg, results[reg]["run_id"], results[reg])
            parent.tags({"genre.champion_decision": registered["reason"], "genre.registered_version":
                         registered["version"]})
        parent.end(ok=True)
    except Exception:
        parent.end(ok=False)
        raise
    with connect(cfg) as con:
        set_state(con, state_key(cfg), prep.fingerprint)
    return {"models": results, "registered": registered, "skipped": False, "fingerprint": prep.fingerprint,
            "split": prep.split.summary(), "parent_run_id": parent.run_id, "param_sources": sources,
            "seconds": round(time.perf_counter() - t0, 3)}
