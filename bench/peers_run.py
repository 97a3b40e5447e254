"""Fit, tune and evaluate one model of the benchmark (a peer adapter or a GENRE registry model).

Peers: each of the first ``budget`` configurations of the peer's grid is fitted on ``split.train_inner`` and
scored on the validation targets (NDCG@10); the best is refitted on the whole training part. GENRE models go
through ``genre_core.models.pipeline.fit_and_evaluate``, exactly as ``genre train`` trains them (configured
hyper-parameters, early stopping on validation, refit for the best number of epochs). Everyone is evaluated by
``genre_core.models.pipeline.evaluate_all`` (test, cold-item and cold-user slices).
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.peers_models import PeerRecommender, PeerSpec
from genre_core.config import GenreConfig
from genre_core.evaluation.evaluate import evaluate
from genre_core.models.base import Recommender
from genre_core.models.blend import FittedMember
from genre_core.models.pipeline import Prepared, evaluate_all, fit_and_evaluate
from genre_core.models.registry import build_model

TOPK = 20


@dataclass
class ModelResult:
    """One row of the benchmark."""

    name: str
    library: str  # "genre", "implicit", "cornac"
    params: dict[str, Any]  # the configuration evaluated on test
    metrics: dict[str, dict[str, Any]]  # "test" / "cold_item" / "cold_user" -> metric -> value (None: n/a)
    fit_s: float  # the final fit on the whole training part
    train_s: float  # every fit: tuning (peers) or early-stopping search (GENRE) plus the final fit
    topk_s: float  # top-20 (training items excluded) for every user
    valid_ndcg10: float | None  # validation NDCG@10 of the chosen configuration / best epoch
    trials: list[dict[str, Any]] = field(default_factory=list)  # peers: {"params", "valid_ndcg@10", "fit_s"}
    cold_capable: bool = False


def topk_seconds(model: Recommender, k: int = TOPK, batch_size: int = 1024) -> float:
    """Wall seconds for ``model.recommend`` (top-``k``, training items excluded) over every user."""
    n = model.idmap.n_users
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            model.recommend(torch.arange(start, min(start + batch_size, n), dtype=torch.int64), k)
    return time.perf_counter() - t0


def split_slices(metrics: dict[str, Any], cold_capable: bool) -> dict[str, dict[str, Any]]:
    """``evaluate_all``'s dict -> {"test", "cold_item", "cold_user"}; the cold-item metrics of a model that
    cannot score unseen items become None (n/a)."""
    test = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    cold = dict(metrics["cold_item"])
    if not cold_capable:
        cold = {k: (v if k == "n_users" else None) for k, v in cold.items()}
    return {"test": test, "cold_item": cold, "cold_user": dict(metrics["cold_user"])}


def import_peer(spec: PeerSpec) -> str | None:
    """Import the peer's package (so the import is not timed as fitting); the reason when it is missing."""
    try:
        importlib.import_module(spec.package)
        for module in spec.modules:
            importlib.import_module(module)
    except ImportError as exc:
        return f"{spec.package} not installed ({exc.name or exc}); pip install 'genre[bench]'"
    return None


def run_peer(spec: PeerSpec, cfg: GenreConfig, prep: Prepared, budget: int, threads: int) -> ModelResult:
    """Tune ``spec`` on validation NDCG@10 over its first ``budget`` configurations, refit, evaluate."""
    if not 1 <= budget <= len(spec.grid):
        raise ValueError(f"budget must be in [1, {len(spec.grid)}] for {spec.name}, got {budget}")
    idmap, seed = prep.data.idmap, cfg.train.seed
    inner = prep.data.with_train(prep.split.train_inner)
    valid = prep.eval_sets["valid"]
    trials: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for params in spec.grid[:budget]:
        model = spec.cls(idmap, dict(params), seed=seed, threads=threads)
        fit_s = model.fit(inner).fit_s
        value = evaluate(model, valid, [10], with_auc=False)["ndcg@10"] if valid.users.size else None
        trials.append({"params": dict(params), "valid_ndcg@10": value, "fit_s": round(fit_s, 3)})
    best = max(trials, key=lambda t: -1.0 if t["valid_ndcg@10"] is None else t["valid_ndcg@10"])
    model: PeerRecommender = spec.cls(idmap, dict(best["params"]), seed=seed, threads=threads)
    fit_s = model.fit(prep.data.with_train(prep.split.train)).fit_s
    train_s = time.perf_counter() - t0
    metrics = evaluate_all(model, prep, cfg.train.k_values)
    return ModelResult(spec.name, model.library, best["params"], split_slices(metrics, model.cold_capable), fit_s,
                       train_s, topk_seconds(model), best["valid_ndcg@10"], trials, model.cold_capable)


def run_genre(name: str, cfg: GenreConfig, prep: Prepared, device: torch.device,
              fitted: dict[str, FittedMember] | None = None) -> ModelResult:
    """Train GENRE's ``name`` through ``fit_and_evaluate`` and time its final fit and top-20. ``fitted``: shared
    by the calls of one run, so a blend reuses its members' fits as in ``genre train`` (its times then cover the
    weight search and the fits it did not reuse; ``params["reused_member_fits"]`` names the reused ones)."""
    stamps: list[tuple[str, float, dict[str, float]]] = []
    model, metrics, _ = fit_and_evaluate(name, cfg, prep, device, fitted=fitted,
                                         on_epoch=lambda phase, r: stamps.append((phase, time.perf_counter(), r)))
    train_s = float(metrics["fit_s"])
    search = [s for s in stamps if s[0] == "search"]
    refit = [s for s in stamps if s[0] == "refit"]
    # the final fit: the refit phase when there is one (from the end of the search to its last epoch)
    fit_s = refit[-1][1] - search[-1][1] if refit and search else train_s
    key = f"valid_{cfg.train.early_stopping_metric}"
    valid = [s[2][key] for s in search if key in s[2]]
    best_valid = max(valid) if valid and cfg.train.early_stopping_metric == "ndcg@10" else None
    fit_details = metrics.get("fit") or {}
    if best_valid is None and "ndcg@10" in (fit_details.get("valid") or {}):  # the blend's weights' validation
        best_valid = float(fit_details["valid"]["ndcg@10"])
    if best_valid is None and prep.eval_sets["valid"].users.size and not model.iterative:
        inner_model = build_model(name, cfg.train, prep.data.idmap).to(device)
        inner_model.fit(prep.data.with_train(prep.split.train_inner))
        best_valid = evaluate(inner_model, prep.eval_sets["valid"], [10], with_auc=False)["ndcg@10"]
    section = getattr(cfg.train, name, None)
    params = section.model_dump(mode="json") if hasattr(section, "model_dump") else {}
    if metrics.get("best_epoch") is not None and model.iterative:
        params["best_epoch"] = metrics["best_epoch"]
    if fit_details.get("reused"):
        params["reused_member_fits"] = list(fit_details["reused"])
    for key in ("weights", "cold_weights"):  # the blend's fitted weights (warm and for short histories)
        if fit_details.get(key):
            params[f"fitted_{key}"] = {n: round(float(w), 3) for n, w in fit_details[key].items()}
    # models that cannot score items unseen in training (Recommender.scores_cold_items False) rank them by a
    # tie-break only: their cold-item numbers are reported as n/a rather than as a random-order artefact
    cold = bool(model.scores_cold_items)
    return ModelResult(name, "genre", params, split_slices(metrics, cold), fit_s, train_s, topk_seconds(model),
                       best_valid, [], cold)


def best_peer(results: list[ModelResult]) -> ModelResult | None:
    """The peer with the highest test NDCG@10 (None when no peer ran)."""
    peers = [r for r in results if r.library != "genre" and r.metrics["test"].get("ndcg@10") is not None]
    return max(peers, key=lambda r: r.metrics["test"]["ndcg@10"]) if peers else None
