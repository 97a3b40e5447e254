"""The benchmark document: environment facts, quality and speed tables, the protocol, other speed benchmarks."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers_run import ModelResult

ROOT = Path(__file__).resolve().parents[1]
BAR = 1.10  # issue 13: the champion's NDCG@10 must be at least this multiple of the best peer's (issue 8: 1.05)
SPEED_DOCS = (  # (file under docs/, section title): collected into the Speed section when present
    ("bench-features.md", "Feature extraction throughput"),
    ("bench-topk.md", "Top-K scoring scaling"),
    ("bench-llm.md", "LLM enrichment throughput"),
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment() -> dict[str, str]:
    """Versions (python, torch, implicit, cornac, recbole, numpy, scipy, GENRE's git sha) and hardware."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    sha = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        sha += " (+ uncommitted changes)"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "python": platform.python_version(), "torch": torch.__version__, "implicit": _version("implicit"),
        "cornac": _version("cornac"), "recbole": _version("recbole"), "numpy": _version("numpy"),
        "scipy": _version("scipy"), "genre": sha,
        "cpu": cpu, "cores": str(os.cpu_count()), "gpu": gpu, "os": platform.platform(),
    }


def load_average() -> str:
    """The 1-minute load average (other processes share this CPU, which skews wall times)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def bar_verdict(results: list[ModelResult], champion: str | None = None) -> tuple[str, bool | None]:
    """A sentence on issue 13's bar and whether it is met (None when the champion or every peer is missing).

    The champion is GENRE's ``champion`` (``train.register_model``) when it ran, else the hybrid."""
    from bench.peers_run import best_peer

    genre = {r.name: r for r in results if r.library == "genre"}
    name = champion or "hybrid"
    champ = genre.get(name)
    peer = best_peer(results)
    if champ is None or peer is None or champ.metrics["test"].get("ndcg@10") is None:
        return f"Bar not evaluated: the run had no GENRE champion ({name}, train.register_model) or no peer.", None
    h, p = champ.metrics["test"]["ndcg@10"], peer.metrics["test"]["ndcg@10"]
    met = h >= BAR * p
    verdict = "**met**" if met else "**NOT met**"
    return (f"Bar (issue 13): GENRE's champion NDCG@10 >= {BAR:.2f} x the best peer's in the same run. Champion "
            f"{name} {h:.4f}, best peer {peer.name} {p:.4f}: ratio {h / p:.3f} (needs {BAR:.2f}) -> {verdict}."), met


def quality_tables(results: list[ModelResult], n_cold_items: int) -> list[str]:
    lines = ["### Overall (warm users x warm items; whole catalogue minus each user's training items)", "",
             "| model | library | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | MRR | Coverage@20 | valid NDCG@10 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: -(r.metrics["test"].get("ndcg@10") or 0.0)):
        t = r.metrics["test"]
        lines.append(f"| {r.name} | {r.library} | {_f(t['recall@10'])} | {_f(t['recall@20'])} | {_f(t['ndcg@10'])} "
                     f"| {_f(t['ndcg@20'])} | {_f(t['mrr'])} | {_f(t['coverage@20'], 3)} | {_f(r.valid_ndcg10)} |")
    lines += ["", f"### Cold-item slice (items held out of training, ranked among the {n_cold_items} cold items) "
              "and cold-user slice", "",
              "n/a: the model ranks only items it saw in training, so it cannot order cold items (no tie-break "
              "numbers are reported for it).", "",
              "| model | cold-item Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | MRR | cold-user NDCG@10 | cold-user "
              "Recall@20 |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, u = r.metrics["cold_item"], r.metrics["cold_user"]
        lines.append(f"| {r.name} | {_f(c['recall@10'])} | {_f(c['recall@20'])} | {_f(c['ndcg@10'])} "
                     f"| {_f(c['ndcg@20'])} | {_f(c['mrr'])} | {_f(u['ndcg@10'])} | {_f(u['recall@20'])} |")
    return lines


def speed_table(results: list[ModelResult]) -> list[str]:
    lines = ["| model | final fit (s) | all fits incl. tuning / early stopping (s) | top-20 for all users (s) "
             "| configurations tried |", "|---|---|---|---|---|"]
    for r in results:
        tried = str(len(r.trials)) if r.trials else "1 (as configured)"
        lines.append(f"| {r.name} | {r.fit_s:.2f} | {r.train_s:.2f} | {r.topk_s:.3f} | {tried} |")
    return lines


def _nest(text: str) -> str:
    """A collected document under a level-3 heading: its level-1 title dropped, other headings two levels
    deeper (## -> ####), fenced code left alone."""
    out, fenced, lines = [], False, text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        out.append("##" + line if line.startswith("#") and not fenced else line)
    return "\n".join(out).strip()


def collected_speed(docs_dir: Path) -> tuple[list[str], list[str]]:
    """Sections built from the other speed benchmarks' documents, and the names of those missing."""
    lines, missing = [], []
    for name, title in SPEED_DOCS:
        path = docs_dir / name
        if not path.is_file():
            missing.append(name)
            continue
        lines += ["", f"### {title} (from docs/{name})", "", _nest(path.read_text(encoding="utf-8"))]
    return lines, missing


def render(results: list[ModelResult], skipped: dict[str, str], ctx: dict[str, Any], docs_dir: Path) -> str:
    """The whole markdown document. ``ctx``: date, command, env, split (summary), split_config, budget,
    threads, seconds, load_start, load_end, prep (stage seconds), home, tracking_uri; optional partial (a note
    that the run is still going)."""
    env = ctx["env"]
    verdict, _ = bar_verdict(results, ctx.get("champion"))
    split, sc = ctx["split"], ctx["split_config"]
    prep = ctx["prep"]
    staged = (f"ingest {prep['ingest_s']:.0f} s, features {prep['features_s']:.0f} s of it"
              if prep["ingest_s"] or prep["features_s"] else "warehouse and features reused from GENRE_HOME")
    lines = [
        f"# GENRE vs peer libraries: {ctx.get('dataset', 'dataset')}", "",
        f"Generated {ctx['date']} by `{ctx['command']}` in {ctx['seconds']:.0f} s ({staged}).", "",
        *([ctx["partial"], ""] if ctx.get("partial") else []),
        verdict, "",
        "## Quality", "", *quality_tables(results, split["cold_items"]), "",
    ]
    if skipped:
        lines += ["Not run: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + ".", ""]
    lines += ["### Configurations evaluated on test", "", "| model | configuration |", "|---|---|"]
    lines += [f"| {r.name} | `{json.dumps(r.params, sort_keys=True)}` |" for r in results]
    speed_docs, missing = collected_speed(docs_dir)
    lines += [
        "", "## Speed", "", "### This run: fit and top-20 per model", "",
        f"CPU threads: {ctx['threads']} (torch, implicit and BLAS). Load average (1 min) at start "
        f"{ctx['load_start']}, at end {ctx['load_end']}: the CPU is shared, so wall times are upper bounds.", "",
        *speed_table(results), *speed_docs, "",
        ("Speed documents not found (run their benchmarks to add them): " + ", ".join(f"docs/{m}" for m in missing)
         if missing else "All speed documents were found."), "",
        "## Protocol", "",
        f"- Data: the configured dataset ({ctx['dataset']}), every interaction a positive"
        f"{'' if sc['min_positive_value'] is None else ' when value >= ' + str(sc['min_positive_value'])}.",
        f"- One split (`genre_core.evaluation.split.make_split`, seed {ctx['seed']}): per-user temporal, "
        + (f"leave-{'one' if sc['test_last_n'] == 1 else sc['test_last_n']}-out: the last {sc['test_last_n']} "
           "interaction(s) of each user to test"
           if sc.get("test_last_n") else f"the last {sc['test_fraction']:.0%} of each user's interactions (at least "
                                          "one) to test")
        + f"; {sc['cold_item_fraction']:.0%}"
        f" of items (with >= {sc['cold_item_min_interactions']} positives) held out of training entirely (cold-item "
        f"slice) and {sc['cold_user_fraction']:.0%} of users keeping only their first {sc['cold_user_history']} "
        f"events (cold-user slice). Validation: "
        + (f"the last {sc['valid_last_n']} of each user's training events. " if sc.get("valid_last_n") else
           f"the last {sc['valid_fraction']:.0%} of each user's training events. ")
        + 
        f"Sizes: {json.dumps(split)}.",
        "- Ranking: the whole catalogue minus each user's training items; the cold-item slice ranks among the cold "
        "items. Metrics: `genre_core.models.pipeline.evaluate_all` (test and slices) and "
        "`genre_core.evaluation.evaluate.evaluate` (validation) for every model, peers wrapped in GENRE's "
        "`Recommender` contract; means over users with at least one target.",
        "- Not the same split as issue 8's reference figures (tuned implicit ALS NDCG@10 ~0.186, Recall@20 ~0.233 "
        "on the plain per-user temporal split): this one also holds the cold items and cold users out. For the "
        "plain protocol add `--set train.split.cold_item_fraction=0 --set train.split.cold_user_fraction=0`.",
        f"- Peers: each tries the first {ctx['budget']} configurations of its grid (`bench/peers_models.py`), fitted "
        "on the training part minus validation and chosen on validation NDCG@10, then refitted on the whole "
        "training part. Items a peer never saw in training are ranked last (score -inf), which is how those "
        "libraries recommend; VBPR scores them from their feature vectors (its id factors and bias are zero "
        "there). cornac's BPR runs on one thread whenever it is seeded (cornac's rule).",
        "- GENRE: the models of `train.models`, trained as `genre train` does with the configured hyper-parameters "
        "(early stopping on validation NDCG@10, refit for the best number of epochs). Not tuned by this command.",
        "- Times: wall seconds. Final fit = the fit on the whole training part (GENRE's iterative models: the "
        "refit phase); all fits = every tuning configuration or early-stopping search with its validation "
        "scoring, plus the final fit; top-20 = `Recommender.recommend` for all users in blocks of 1024 (scores, "
        "training items masked, `torch.topk`).",
        f"- MLflow: experiment `{ctx['experiment']}` at `{ctx['tracking_uri']}`, one run per model under a parent run.",
        "", "## Environment", "",
        f"- Versions: python {env['python']}, torch {env['torch']}, implicit {env['implicit']}, cornac "
        f"{env['cornac']}, recbole {env.get('recbole', 'n/a')}, numpy {env['numpy']}, scipy {env['scipy']}; "
        f"GENRE git {env['genre']}.",
        f"- Hardware: {env['cpu']}, {env['cores']} cores, GPU: {env['gpu']}; {env['os']}.",
        f"- Command: `{ctx['command']}`.", "",
    ]
    return "\n".join(lines)
