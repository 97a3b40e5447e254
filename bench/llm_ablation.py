"""The LLM ablation: GENRE's train path with and without each stored LLM feature, several seeds, one table.

    GENRE_HOME=/tmp/h python -m bench.llm_ablation --config conf/movielens-100k.yaml --seeds 42,43,44 \
        --models hybrid --out docs/llm-ablation-ml100k.md --json /tmp/h/llm-ablation.json

Variants (``--variants``, default all): ``none`` (no LLM feature), ``text_llm`` (LLM-enriched item text),
``text_llmenc`` (LLM-encoder item vectors), ``profile`` (LLM user profiles, ``train.<model>.use_profiles``),
``cold_gen`` (cold-user generator vectors, ``use_cold_gen``) and ``all`` (every one of them stored in the home).
Each is a config override of the model's section only (item features through ``modalities``, user features
through their switch; ``use_llm_text`` / ``use_llm_features`` off so nothing comes in implicitly). A variant
whose feature is not stored in the home is reported as not available instead of being trained.

Per seed ``S`` the config gets ``train.seed=S`` and ONE split is made (``genre_core.models.pipeline.prepare``,
the function ``genre train`` uses); every variant of that seed and the popularity reference are fitted and
evaluated on it with ``fit_and_evaluate`` (same metric code as ``genre train``). No MLflow run is logged and
nothing is registered: the home is only read. The JSON file is rewritten after every run (``--resume`` keeps
the runs it already holds, of any seed, and adds the missing ones), so a killed run keeps its results.

Cold-user generator vectors exist only for the cold users of the split that ``genre enrich`` made (its own
``train.seed``; a rerun with another seed replaces them). For several seeds, per seed ``S``:
``genre enrich ... --set train.seed=S --set 'llm.roles=[cold_gen]'`` (cached answers: only new users cost
calls), then this command with ``--seeds S --resume`` on the same ``--json``. The per-seed table shows how many of
each split's cold users carry a vector.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from tqdm.auto import tqdm

from bench.llm_ablation_report import BASELINE, METRICS, REFERENCE, markdown_tables, summarise
from genre_core.config import ConfigError, GenreConfig, load_config
from genre_core.device import resolve_device, torch_threads
from genre_core.models.data import COLD_GEN_MODALITY, LLM_ENCODER_MODALITY, LLM_ITEM_MODALITY, LLM_USER_MODALITY
from genre_core.models.loading import WarehouseFrames, read_warehouse
from genre_core.models.pipeline import Prepared, fit_and_evaluate, prepare
from genre_core.models.registry import MODELS

ITEM_FEATURES = (LLM_ITEM_MODALITY, LLM_ENCODER_MODALITY)  # item modalities
USER_FEATURES = (LLM_USER_MODALITY, COLD_GEN_MODALITY)  # user_features modalities
FEATURES = (*ITEM_FEATURES, *USER_FEATURES)
# control: the plain text vectors again as one more modality, on exactly the items that have text_llm (enrichment
# goes most-interacted first, so coverage alone marks popular items; an extra tower adds capacity): what +text_llm
# gains beyond this is what the generated content itself brings
CONTROL = "text_copy"
VARIANTS = (BASELINE, *FEATURES, "all", CONTROL)
SWITCH = {LLM_USER_MODALITY: "use_profiles", COLD_GEN_MODALITY: "use_cold_gen"}  # user feature -> config field
OFF = ("use_llm_text", "use_llm_features", "use_profiles", "use_cold_gen")  # switched off in every variant


def coverage(frames: WarehouseFrames) -> dict[str, dict[str, int]]:
    """{feature: {"covered": items/users with a stored vector, "of": catalogue items / users}}."""
    def covered(feats: dict[str, Any], m: str, key: str, ids: list[str]) -> int:
        return int(feats[m][key].cast(str).is_in(ids).sum()) if m in feats else 0

    out = {m: {"covered": covered(frames.item_features, m, "item_id", frames.items), "of": len(frames.items)}
           for m in ITEM_FEATURES}
    out.update({m: {"covered": covered(frames.user_features, m, "user_id", frames.users), "of": len(frames.users)}
                for m in USER_FEATURES})
    return out


def variant_features(variant: str, cov: dict[str, dict[str, int]]) -> tuple[str, ...]:
    """The LLM features a variant turns on (``all``: every stored one)."""
    if variant == BASELINE:
        return ()
    if variant == CONTROL:
        return (CONTROL,)
    if variant == "all":
        return tuple(f for f in FEATURES if cov[f]["covered"])
    return (variant,)


def unavailable_reason(variant: str, cov: dict[str, dict[str, int]], section: Any, base: list[str]) -> str | None:
    """Why ``variant`` cannot run with this home and model section (None: it can)."""
    feats = variant_features(variant, cov)
    if variant == CONTROL:
        if "modalities" not in type(section).model_fields:
            return "not supported by this model (its config has no `modalities`)"
        if not cov[LLM_ITEM_MODALITY]["covered"] or "text" not in base:
            return "not available: the control needs stored text_llm and the `text` item modality"
        return None
    if variant == "all" and not feats:
        return "not available in this home (no LLM feature stored)"
    for f in feats:
        kind = "items" if f in ITEM_FEATURES else "users"
        if not cov[f]["covered"]:
            return f"not available in this home (0 of {cov[f]['of']} {kind} covered)"
        field = "modalities" if f in ITEM_FEATURES else SWITCH[f]
        if field not in type(section).model_fields:
            return f"not supported by this model (its config has no `{field}`)"
    if COLD_GEN_MODALITY in feats and "text" not in base:
        return "not available: cold_gen needs the `text` item modality"
    if variant == "all" and len(feats) == 1:  # the same run as that feature's own row
        return f"= +{feats[0]} (the only LLM feature stored)"
    return None


def base_modalities(section: Any, frames: WarehouseFrames) -> list[str]:
    """The model's item modalities without any LLM one: its configured list, or every stored modality."""
    configured = getattr(section, "modalities", None)
    mods = [m for m in (configured if configured is not None else list(frames.item_features)) if m not in FEATURES]
    if not mods:
        raise SystemExit(f"no non-LLM item modality to start from (stored: {sorted(frames.item_features)}); "
                         "run `genre features` first")
    return mods


def variant_config(cfg: GenreConfig, model: str, variant: str, seed: int, base: list[str],
                   cov: dict[str, dict[str, int]]) -> GenreConfig:
    """``cfg`` with ``train.seed=seed`` and the model's section switched to exactly the variant's features
    (validated by the section's pydantic class)."""
    section = getattr(cfg.train, model)
    fields = type(section).model_fields
    feats = variant_features(variant, cov)
    update: dict[str, Any] = {k: False for k in OFF if k in fields}
    if "modalities" in fields:
        update["modalities"] = base + [f for f in (*ITEM_FEATURES, CONTROL) if f in feats]
    update.update({SWITCH[f]: True for f in USER_FEATURES if f in feats})
    out = cfg.model_copy(deep=True)
    out.train.seed = seed
    setattr(out.train, model, type(section).model_validate({**section.model_dump(), **update}))
    return out


def with_control(prep: Prepared) -> Prepared:
    """``prep`` plus the control modality: the ``text`` vectors [n_items, d] where ``text_llm`` is stored, zero
    elsewhere (same split, same everything else)."""
    d = prep.data
    mask = d.item_feature_mask[LLM_ITEM_MODALITY] & d.item_feature_mask["text"]
    vec = np.where(mask[:, None], d.item_features["text"], 0.0).astype(np.float32)
    return replace(prep, data=replace(d, item_features={**d.item_features, CONTROL: vec},
                                      item_feature_mask={**d.item_feature_mask, CONTROL: mask}))


def split_hash(prep: Prepared) -> str:
    """A short fingerprint of a split (train/valid/test events and the cold sets): equal hash, same split."""
    h = hashlib.sha1()
    s = prep.split
    for part in (s.train, s.train_inner, s.valid, s.test, s.test_cold_item, s.test_cold_user):
        for arr in (part.user, part.item, part.ts):
            h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (s.cold_items, s.cold_users):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:12]


def slice_coverage(prep: Prepared) -> dict[str, int]:
    """How many of this split's cold users / cold items carry each LLM feature (profiles and cold_gen vectors
    are written for the users the enrich stage chose, which need not be this split's cold users)."""
    d = prep.data
    out = {"cold_users": int(prep.split.cold_users.size), "cold_items": int(prep.split.cold_items.size)}
    for f in USER_FEATURES:
        mask = d.user_feature_mask.get(f)
        out[f"cold_users_with_{f}"] = int(mask[prep.split.cold_users].sum()) if mask is not None else 0
    for f in ITEM_FEATURES:
        mask = d.item_feature_mask.get(f)
        out[f"cold_items_with_{f}"] = int(mask[prep.split.cold_items].sum()) if mask is not None else 0
    return out


def _metrics(m: dict[str, Any]) -> dict[str, float | None]:
    out = {}
    for name, part, key in METRICS:
        src = m.get(part) if part else m
        out[name] = float(src[key]) if src and src.get(key) is not None else None
    return out


def _write_json(path: Path | None, doc: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)  # a kill never leaves a half-written file


def run(cfg: GenreConfig, seeds: list[int], models: list[str], variants: list[str], json_path: Path | None,
        resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train every (seed, model, available variant) plus popularity per seed; return the JSON document
    {"coverage", "unavailable": {model: {variant: reason}}, "runs": [...], "seeds", "models", "variants", ...}."""
    from genre_core.tuning.apply import apply_tuned  # noqa: PLC0415

    cfg, _ = apply_tuned(cfg, models)  # the stored `genre tune` results, as `genre train` uses them
    try:
        frames = read_warehouse(cfg)
    except (FileNotFoundError, ValueError, duckdb.IOException) as exc:
        raise SystemExit(f"error: cannot read the warehouse of GENRE_HOME: {exc}") from None
    cov = coverage(frames)
    if progress:  # before hours of training: what the home holds
        print("coverage: " + "; ".join(f"{f} {c['covered']} of {c['of']}" for f, c in cov.items()), flush=True)
    bases = {m: base_modalities(getattr(cfg.train, m), frames) for m in models}
    unavailable = {m: {v: r for v in variants if (r := unavailable_reason(v, cov, getattr(cfg.train, m), bases[m]))}
                   for m in models}
    doc: dict[str, Any] = {"all_features": list(variant_features("all", cov)), "seeds": seeds, "models": models,
                           "variants": variants, "coverage": cov, "base_modalities": bases, "unavailable": unavailable,
                           "split": cfg.train.split.model_dump(), "runs": [], "finished": False}
    train = {k: v for k, v in cfg.train.model_dump(mode="json").items() if k != "seed"}  # seeds are set per run
    doc["train_config"] = hashlib.sha1(json.dumps(train, sort_keys=True, default=str).encode()).hexdigest()[:12]
    if resume and json_path is not None and json_path.is_file():
        old = json.loads(json_path.read_text(encoding="utf-8"))
        if old.get("train_config") != doc["train_config"]:
            raise SystemExit(f"error: --resume: {json_path} was written with another train config "
                             f"({old.get('train_config')} vs {doc['train_config']}); use a new --json file")
        doc["runs"] = [r for r in old.get("runs", []) if r["model"] == REFERENCE or (
            r["model"] in models and r["variant"] in variants)]
        doc["seeds"] = list(dict.fromkeys([*old.get("seeds", []), *seeds]))
    done = {(r["seed"], r["model"], r["variant"]) for r in doc["runs"]}
    plan = [(s, m, v) for s in seeds for m in models for v in variants if v not in unavailable[m]]
    plan += [(s, "popularity", REFERENCE) for s in seeds]
    plan.sort(key=lambda t: seeds.index(t[0]))
    todo = [t for t in plan if t not in done]
    device = resolve_device(cfg.train.device)
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="ablation runs", disable=not progress)
    prep, prep_seed = None, None
    with torch_threads(cfg.train.cpu_threads, device):
        for seed, model, variant in todo:
            bar.set_postfix(seed=seed, model=model, variant=variant)
            if prep_seed != seed:
                seeded = cfg.model_copy(deep=True)
                seeded.train.seed = seed
                prep, prep_seed = prepare(seeded, frames), seed
            run_cfg = (variant_config(cfg, model, variant, seed, bases[model], cov) if model != "popularity"
                       else seeded)
            t0 = time.perf_counter()
            data = with_control(prep) if variant == CONTROL else prep
            _, metrics, _ = fit_and_evaluate(model, run_cfg, data, device)
            doc["runs"].append({"seed": seed, "model": model, "variant": variant, "split_hash": split_hash(prep),
                                "features": list(variant_features(variant, cov)) if model != "popularity" else [],
                                "metrics": _metrics(metrics), "best_epoch": metrics.get("best_epoch"),
                                "seconds": round(time.perf_counter() - t0, 1), "slice_coverage": slice_coverage(prep)})
            _write_json(json_path, doc)
            bar.update(1)
    bar.close()
    doc["finished"] = True
    _write_json(json_path, doc)
    return doc


def render(doc: dict[str, Any], command: str, seconds: float | None) -> str:
    """The markdown document: coverage, split and seeds, caveats, the tables of ``bench.llm_ablation_report``."""
    cov, seeds = doc["coverage"], doc["seeds"]
    runs = doc["runs"]
    lines = ["# LLM ablation (generated by `bench.llm_ablation`)", "", f"Command: `{command}`"
             + (f" ({seconds:.0f} s on a shared, loaded 2-core CPU)." if seconds is not None else "."), "",
             "Coverage in this home: " + "; ".join(
                 f"{f}: {c['covered']} of {c['of']} {'items' if f in ITEM_FEATURES else 'users'}"
                 for f, c in cov.items()) + ".", "",
             f"Split: `train.split` {json.dumps(doc['split'])}; the seed drives the split, initialisation and "
             f"sampling, so each seed is its own split and every row of a seed shares it (checked by a hash). "
             f"Seeds {', '.join(map(str, seeds))}; base item modalities {doc['base_modalities']}.", ""]
    sc = {r["seed"]: r["slice_coverage"] for r in runs}
    if sc:
        keys = ["cold_users", *(f"cold_users_with_{f}" for f in USER_FEATURES), "cold_items",
                *(f"cold_items_with_{f}" for f in ITEM_FEATURES)]
        lines += ["The split's cold users and cold items per seed, and how many carry each LLM feature:", "",
                  "| seed | " + " | ".join(k.replace("_with_", " with ").replace("cold_", "cold ", 1) for k in keys)
                  + " |",
                  "|---|" + "---|" * len(keys)]
        lines += [f"| {s} | " + " | ".join(str(c.get(k, "")) for k in keys) + " |" for s, c in sorted(sc.items())]
        lines.append("")
    if cov[LLM_USER_MODALITY]["covered"]:
        lines += ["User profiles are written by `genre enrich` from the training part of the split of its "
                  "`train.seed` (`llm.user_history: training`, the default): run it with each seed before that seed's "
                  "rows (`--seeds S --resume`), or a seed's cold users keep profiles that saw their held-out events. "
                  "Profiles written with `llm.user_history: all` include every held-out event (`+profile` leaks).",
                  ""]
    summary = summarise(runs, doc["models"], doc["variants"])
    labels = {"all": f"all ({', '.join(doc['all_features'])})"} if doc.get("all_features") else {}
    lines += markdown_tables(summary, doc["models"], doc["variants"], seeds, doc["unavailable"], labels)
    thin = [(s, c) for s, c in sorted(sc.items()) if COLD_GEN_MODALITY in doc["variants"]
            and c.get(f"cold_users_with_{COLD_GEN_MODALITY}", 0) < c["cold_users"]]
    if cov[COLD_GEN_MODALITY]["covered"] and thin:
        lines += ["**Warning**: `cold_gen` vectors cover only part of the cold users of " + ", ".join(
            f"seed {s} ({c.get(f'cold_users_with_{COLD_GEN_MODALITY}', 0)} of {c['cold_users']})" for s, c in thin)
            + ": `genre enrich` writes them for the split of its own `train.seed`. Per seed S: `genre enrich "
            "--set train.seed=S --set 'llm.roles=[cold_gen]'`, then this command with `--seeds S --resume`.", ""]
    if CONTROL in doc["variants"]:
        lines += ["`+text copy (control)`: the plain `text` vectors once more as an extra modality on exactly the "
                  "items that have `text_llm`. Enrichment goes most-interacted first, so coverage alone marks popular "
                  "items, and an extra tower adds capacity: only what `+text_llm` gains beyond the control is owed "
                  "to the generated text.", ""]
    lines += ["A variant *helps beyond spread* on a metric when its paired delta vs `none` is > 0 on every seed "
              "and its mean exceeds the sample std of the deltas.",
              "" if doc.get("finished") else "\n**Incomplete**: the command did not finish; rows show what ran."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="config file (conf/default.yaml underneath)")
    ap.add_argument("--home", default=None, help="GENRE_HOME to read (default: $GENRE_HOME)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--models", default="hybrid", help="comma list of models whose section has the switches")
    ap.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    ap.add_argument("--json", default=None, help="JSON results, rewritten after every run")
    ap.add_argument("--resume", action="store_true", help="keep the runs already in --json and do the rest")
    ap.add_argument("--report-only", action="store_true", help="only render --json into --out")
    args = ap.parse_args(argv)
    command = "python -m bench.llm_ablation " + " ".join(sys.argv[1:] if argv is None else argv)
    json_path = Path(args.json) if args.json else None
    if args.report_only:
        if json_path is None or not json_path.is_file():
            ap.error("--report-only needs an existing --json file")
        seconds = None
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    else:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            ap.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
        variants = [v.strip().lstrip("+") for v in args.variants.split(",") if v.strip()]
        bad = [v for v in variants if v not in VARIANTS]
        if bad or not variants:
            ap.error(f"unknown --variants {bad}; valid: {', '.join(VARIANTS)}")
        if BASELINE not in variants:
            variants.insert(0, BASELINE)  # the paired deltas need it
        if args.home:
            os.environ["GENRE_HOME"] = args.home
        try:
            cfg = load_config(args.config, args.overrides)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        bad = [m for m in models if m == REFERENCE or m not in MODELS.names() or not hasattr(cfg.train, m)]
        if bad or not models:
            ap.error(f"--models {bad}: not a built-in model with a train section (valid: {MODELS.names()}; "
                     f"popularity is the reference row anyway)")
        t0 = time.perf_counter()
        doc = run(cfg, seeds, models, variants, json_path, resume=args.resume)
        seconds = time.perf_counter() - t0
    text = render(doc, command, seconds)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
