"""Benchmark: MMR diversity re-ranking (``recommend.diversity``) vs the model's own order, offline on the test split.

    python -m bench.diversity [--config conf/movielens-100k.yaml] [--models hybrid,bpr]
                              [--weights 0,0.1,0.2,0.3,0.5,0.7] [--k 10] [--pool-factor 3] [--set KEY=VALUE ...]

Uses GENRE's own pieces end to end: the warehouse under ``GENRE_HOME`` (ingested and embedded first when empty),
``prepare`` for the split (``train.split``, ``train.seed``), ``fit_and_evaluate`` to train each model, and
``evaluate`` for the metrics. Each user's list is re-ranked exactly as the recommend stage does it (the model's top
``k * pool_factor`` unseen items, MMR over the stored ``recommend.content_modality`` vectors, centred and
L2-normalised), and the re-ranked list goes through the same metric code as ``genre train``: NDCG@k / recall@k
against the test targets, intra-list diversity and novelty (``genre_core.evaluation.beyond``, over the train
report's content vectors and training popularity). Prints a table with ratios to the un-re-ranked list.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from genre_core.config import load_config
from genre_core.models.base import Recommender
from genre_core.ranking import TopK, rank_block

WEIGHTS = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


class Reranked(Recommender):
    """A view of a fitted model whose scores rank its MMR-re-ranked top ``k`` first, in MMR order.

    ``score`` gives the chosen items ``k - slot`` (>= 1) and every other item sigmoid(model score) - 2 (< -1), so
    the evaluation's own top-k reads exactly the re-ranked list; ranks beyond ``k`` keep the model's order.
    """

    name = "reranked"

    def __init__(self, base: Recommender, vectors: np.ndarray, k: int, pool: int, weight: float) -> None:
        super().__init__(base.idmap, None, base.seed)
        self.base, self.vectors, self.k, self.pool, self.weight = base, vectors, k, pool, weight
        self.device = base.device
        self.set_histories(base.hist_indptr.numpy(), base.hist_indices.numpy())

    def fit(self, data: Any, valid: Any = None, **options: Any) -> Any:
        raise NotImplementedError("a re-ranked view is not trained")

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        from genre_core.recommend.diversity import diversify  # noqa: PLC0415

        raw = self.base.score(user_idx).float().cpu()
        # the serving path: the one ranking step (seen items masked, top pool) then the publish-time MMR
        idx, vals = rank_block(raw.clone(), self.pool, self.seen(user_idx.cpu()))
        chosen = diversify(TopK(items=idx.numpy(), scores=vals.numpy()), self.vectors, self.k, self.weight).items
        out = torch.sigmoid(torch.nan_to_num(raw)) - 2.0
        rows, slots = np.nonzero(chosen >= 0)
        out[torch.as_tensor(rows), torch.as_tensor(chosen[rows, slots])] = torch.as_tensor(
            (self.k - slots).astype(np.float32))
        return out

    def state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        raise NotImplementedError("a re-ranked view is not saved")


def mmr_vectors(prep: Any, modality: str) -> np.ndarray:
    """The serving path's MMR vectors from the prepared data: stored vectors L2-normalised, then centred and
    normalised again (``genre_core.recommend.data.content_matrix`` + ``diversity.centred_unit_rows``)."""
    from genre_core.recommend.diversity import centred_unit_rows  # noqa: PLC0415

    if modality not in prep.data.item_features:
        raise SystemExit(f"no '{modality}' item vectors in the warehouse; run `genre features` first")
    v = prep.data.item_features[modality]
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return centred_unit_rows(unit, prep.data.item_feature_mask[modality])


def run(cfg: Any, models: list[str], weights: list[float], k: int, pool_factor: int) -> list[dict[str, Any]]:
    from bench.peers_data import ensure_warehouse  # noqa: PLC0415
    from genre_core.evaluation.evaluate import evaluate  # noqa: PLC0415
    from genre_core.evaluation.lists import list_inputs  # noqa: PLC0415
    from genre_core.device import resolve_device  # noqa: PLC0415
    from genre_core.models.pipeline import fit_and_evaluate, prepare  # noqa: PLC0415
    from genre_core.recommend.diversity import pool_size  # noqa: PLC0415

    ensure_warehouse(cfg, progress=True)
    prep = prepare(cfg)
    ild_vectors, popularity = list_inputs(prep.data, prep.split.train)
    vectors = mmr_vectors(prep, cfg.recommend.content_modality)
    pool = pool_size(k, pool_factor, prep.data.idmap.n_items)
    device = resolve_device(cfg.train.device)
    rows: list[dict[str, Any]] = []
    for name in models:
        t0 = time.perf_counter()
        model, _, _ = fit_and_evaluate(name, cfg, prep, device, progress=True)
        fit_s = time.perf_counter() - t0
        for w in weights:
            t1 = time.perf_counter()
            view = Reranked(model, vectors, k, pool, w)
            m = evaluate(view, prep.eval_sets["test"], [k], with_auc=False, item_vectors=ild_vectors,
                         popularity=popularity)
            rows.append({"model": name, "weight": w, **{key: m[f"{key}@{k}"] for key in
                         ("ndcg", "recall", "diversity", "novelty", "coverage")},
                         "eval_s": time.perf_counter() - t1, "fit_s": fit_s, "users": m["n_users"]})
    return rows


def print_table(rows: list[dict[str, Any]], k: int, header: str) -> None:
    t = Table("model", "weight", f"NDCG@{k}", "x w=0", f"recall@{k}", f"diversity@{k}", "x w=0",
              f"novelty@{k} (bits)", f"coverage@{k}", "eval s", title=header)
    base = {r["model"]: r for r in rows if r["weight"] == 0.0}
    for r in rows:
        b = base.get(r["model"])
        ratio = (lambda key: f"{r[key] / b[key]:.3f}" if b and b[key] else "n/a")  # noqa: E731
        t.add_row(r["model"], f"{r['weight']:.2f}", f"{r['ndcg']:.4f}", ratio("ndcg"), f"{r['recall']:.4f}",
                  f"{r['diversity']:.4f}", ratio("diversity"), f"{r['novelty']:.3f}", f"{r['coverage']:.3f}",
                  f"{r['eval_s']:.1f}")
    Console(width=200).print(t)


def to_markdown(rows: list[dict[str, Any]], k: int) -> str:
    """The same figures as a markdown table (for docs/diversity.md)."""
    base = {r["model"]: r for r in rows if r["weight"] == 0.0}
    out = [f"| model | w | NDCG@{k} | vs w=0 | recall@{k} | diversity@{k} | vs w=0 | novelty@{k} | coverage@{k} |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = base[r["model"]]
        out.append(f"| {r['model']} | {r['weight']:.1f} | {r['ndcg']:.4f} | {r['ndcg'] / b['ndcg']:.3f} | "
                   f"{r['recall']:.4f} | {r['diversity']:.4f} | {r['diversity'] / b['diversity']:.3f} | "
                   f"{r['novelty']:.3f} | {r['coverage']:.3f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.diversity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="conf/movielens-100k.yaml")
    ap.add_argument("--models", default="hybrid", help="comma-separated model names from train.models")
    ap.add_argument("--weights", default=",".join(str(w) for w in WEIGHTS))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--pool-factor", type=int, default=None, help="default: recommend.diversity.pool_factor")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    weights = [float(w) for w in args.weights.split(",")]
    if 0.0 not in weights:
        weights.insert(0, 0.0)
    pool_factor = args.pool_factor or cfg.recommend.diversity.pool_factor
    rows = run(cfg, args.models.split(","), weights, args.k, pool_factor)
    split = cfg.train.split
    print_table(rows, args.k, f"MMR re-ranking on the test split ({split.kind}, test_fraction {split.test_fraction}, "
                f"seed {cfg.train.seed}), pool k*{pool_factor}, {rows[0]['users'] if rows else 0} users")
    print(to_markdown(rows, args.k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
