"""Benchmark: GENRE's models against peer libraries (implicit, cornac) on one split, quality and speed.

    python -m bench.peers --config conf/movielens-100k.yaml [--budget 4] [--out docs/benchmarks.md]
        [--home DIR] [--models hybrid,popularity,...] [--peers implicit-als,...] [--threads N]
        [--set train.split.cold_item_fraction=0 ...] [--experiment genre-bench] [--no-mlflow] [--json PATH]

Ingests and extracts features when the warehouse under ``--home`` (default: $GENRE_HOME, else
``.genre-bench`` in the working directory, kept so that later runs reuse the features) lacks them; splits with
``genre_core.models.pipeline.prepare``; trains GENRE's configured models exactly as ``genre train`` does; gives
every peer the same tuning budget on validation NDCG@10; evaluates everyone with the same metric functions;
prints a markdown table and writes it (with versions, hardware, protocol and this command) to ``--out``
(rewritten after every finished model, marked partial until the end, so an interrupted run keeps its rows),
collecting the other speed benchmarks' documents (docs/bench-features.md, bench-topk.md, bench-llm.md) into
its Speed section; logs one MLflow run per model under a parent run (experiment ``genre-bench``).

A command, not a test: the peers need the ``bench`` extra (``pip install 'genre[bench]'``); a missing peer is
skipped with the reason in the document.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers_report import ROOT, bar_verdict, environment, load_average, render

DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.peers_models import MAX_BUDGET, PEERS

    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="GENRE YAML config (dataset, split, GENRE's models)")
    p.add_argument("--budget", type=int, default=4, help=f"configurations tried per peer (1..{MAX_BUDGET})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown output (default docs/benchmarks.md)")
    p.add_argument("--home", type=Path, default=None,
                   help="GENRE_HOME for the warehouse and MLflow store (default $GENRE_HOME or ./.genre/bench)")
    p.add_argument("--models", default=None, help="GENRE models, comma-separated (default: train.models)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"peers, comma-separated (default: {','.join(PEERS)})")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch, implicit and cornac (default: train.cpu_threads, else all cores)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. train.split.cold_item_fraction=0 (repeatable)")
    p.add_argument("--experiment", default="genre-bench", help="MLflow experiment name")
    p.add_argument("--no-mlflow", action="store_true", help="do not log MLflow runs")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON here")
    args = p.parse_args(argv)
    if not 1 <= args.budget <= MAX_BUDGET:
        p.error(f"--budget must be in [1, {MAX_BUDGET}]")
    unknown = [n for n in _names(args.peers) if n not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {unknown}; valid: {', '.join(PEERS)}")
    return args


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _command(argv: list[str] | None) -> str:
    return "python -m bench.peers " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def log_mlflow(cfg: Any, results: list[Any], ctx: dict[str, Any], report: str) -> str:
    """One parent run (the document and raw results as artifacts) and one nested run per model; returns the
    parent run id."""
    from genre_core.tracking import RunLogger, flat_metrics

    parent = RunLogger(cfg, f"bench-{time.strftime('%Y%m%dT%H%M%S')}",
                       tags={"genre.stage": "bench", "genre.git": ctx["env"]["genre"]})
    try:
        parent.params({"command": ctx["command"], "budget": ctx["budget"], "threads": ctx["threads"],
                       **{f"split.{k}": v for k, v in ctx["split"].items()},
                       **{f"env.{k}": v for k, v in ctx["env"].items()}})
        for r in results:
            run = RunLogger(cfg, r.name, parent_run_id=parent.run_id,
                            tags={"genre.model": r.name, "genre.library": r.library, "genre.stage": "bench"})
            run.params({"model": r.name, "library": r.library, "budget": ctx["budget"],
                        **{f"param.{k}": v for k, v in r.params.items()}})
            for step, t in enumerate(r.trials):
                if t["valid_ndcg@10"] is not None:
                    run.metrics({"trial.valid_ndcg_at_10": t["valid_ndcg@10"], "trial.fit_s": t["fit_s"]}, step=step)
            numbers = {"fit_s": r.fit_s, "train_s": r.train_s, "topk20_s": r.topk_s,
                       "valid_ndcg@10": r.valid_ndcg10}
            run.metrics(flat_metrics({**r.metrics["test"], "cold_item": r.metrics["cold_item"],
                                      "cold_user": r.metrics["cold_user"], **numbers}))
            run.end(ok=True)
        parent.json_artifact([_as_dict(r) for r in results], "results.json")
        parent.json_artifact({"markdown": report}, "benchmarks.json")
        parent.end(ok=True)
    except Exception:
        parent.end(ok=False)
        raise
    return parent.run_id


def _as_dict(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(r)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 (the bar's outcome is reported, not an exit status)."""
    args = parse_args(argv)
    home = args.home or Path(os.environ.get("GENRE_HOME") or Path.cwd() / ".genre" / "bench")
    os.environ["GENRE_HOME"] = str(Path(home).expanduser().resolve())
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    from bench.peers_data import ensure_warehouse
    from bench.peers_models import PEERS
    from bench.peers_run import import_peer, run_genre, run_peer
    from genre_core.config import load_config
    from genre_core.device import resolve_device
    from genre_core.models.pipeline import prepare, training_order
    from genre_core.models.registry import get_model_class

    cfg = load_config(args.config, args.overrides)
    cfg.tracking.experiment = args.experiment
    models = _names(args.models) or list(cfg.train.models)
    for name in models:
        get_model_class(name)  # unknown names fail before any work, listing the valid ones
    threads = args.threads or cfg.train.cpu_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    t0, load_start = time.perf_counter(), load_average()
    print(f"GENRE_HOME={os.environ['GENRE_HOME']}; {threads} CPU thread(s)", flush=True)
    prep_s = ensure_warehouse(cfg, progress=sys.stderr.isatty())
    from genre_core.tuning.apply import apply_tuned  # noqa: PLC0415

    cfg, tuned = apply_tuned(cfg, models)  # GENRE's models as `genre train` runs them: with `genre tune`'s results
    for model, params in tuned.items():
        for param, source in params.items():
            if source.startswith("tuned"):
                print(f"{model}.{param}: {source}", flush=True)
    prep = prepare(cfg)
    device = resolve_device(cfg.train.device)
    from genre_core.tracking import tracking_uri

    results: list[Any] = []
    skipped: dict[str, str] = {}
    peers = _names(args.peers)
    ctx = {"date": "", "command": _command(argv), "env": environment(), "split": prep.split.summary(),
           "split_config": cfg.train.split.model_dump(), "budget": args.budget, "threads": threads, "seconds": 0.0,
           "prep": prep_s, "load_start": load_start, "load_end": "", "dataset": cfg.dataset.name, "champion": cfg.train.register_model,
           "seed": cfg.train.seed, "experiment": args.experiment,
           "tracking_uri": "(not logged: --no-mlflow)" if args.no_mlflow else tracking_uri(cfg)}

    def write(partial: bool) -> str:
        """(Re)write --out and --json with every finished model: a long run is never lost."""
        ctx.update(date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), seconds=time.perf_counter() - t0,
                   load_end=load_average())
        done = len(results) + len(skipped)
        ctx["partial"] = (f"**Partial report**: {done} of {len(models) + len(peers)} models finished so far; "
                          "rewritten after each model (an interrupted run keeps these rows).") if partial else None
        report = render(results, skipped, ctx, args.out.parent)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report, encoding="utf-8")
        if args.json:
            args.json.write_text(json.dumps({"results": [_as_dict(r) for r in results], "skipped": skipped,
                                             "context": ctx}, indent=2, default=str), encoding="utf-8")
        return report

    # as `genre train`: models made of other models (blend) run last and reuse their members' fits
    models, needed = training_order(cfg, models)
    fitted: dict = {}
    for name in models:
        print(f"[genre] {name} ...", flush=True)
        results.append(run_genre(name, cfg, prep, device, fitted))
        if name not in needed:
            fitted.pop(name, None)
        write(partial=True)
    fitted.clear()  # release the members' models before the peers are timed
    for name in peers:
        spec = PEERS[name]
        reason = import_peer(spec)
        if reason:
            skipped[name] = reason
            print(f"[peer] {name}: skipped, {reason}", flush=True)
            continue
        print(f"[peer] {name} ({args.budget} configurations) ...", flush=True)
        results.append(run_peer(spec, cfg, prep, args.budget, threads))
        write(partial=True)
    report = write(partial=False)
    print(report)
    if not args.no_mlflow:
        run_id = log_mlflow(cfg, results, ctx, report)
        print(f"MLflow: parent run {run_id} in experiment {args.experiment!r} at {ctx['tracking_uri']}")
    print(bar_verdict(results, cfg.train.register_model)[0])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
