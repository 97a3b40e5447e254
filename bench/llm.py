"""Content-enricher throughput of the local engines side by side, same SmolLM2-135M-Instruct, same prompts.

    python -m bench.llm --n 64 --engines transformers,transformers:bf16,llama_engine,ctranslate2 \
        --batch-sizes 16,32,64 --threads 2      # docs/bench-llm.md

Reads the first ``--n`` MovieLens 100K items (titles, genres, TMDB overviews) from the data dir and renders the
configured ``enrich`` prompt. For each engine it loads the model once (the safetensors copy of the shipped GGUF,
and for ctranslate2 its int8 conversion: conversion times are reported separately), warms up, then times
``generate`` over all items at every (threads, batch size) of the sweep (greedy, ``llm.max_new_tokens``), each
engine in its own fresh process, each
call getting the backend's ``chunk_size`` prompts as in the enrich stage (``llama_engine``: 4 batches, so finished
rows are refilled; ``ctranslate2``: a batch per worker). ``ENGINE:DTYPE`` picks ``llm.dtype`` (``compute_type`` for
ctranslate2). The
table gives each engine's best configuration and its items/s as a ratio of the transformers backend's best;
agreement compares each engine's greedy outputs with the transformers outputs prompt by prompt (exact match, and
mean word-level similarity = difflib ratio over word sequences).
"""
from __future__ import annotations

import argparse
import csv
import difflib
import os
import platform
import time
from pathlib import Path

import polars as pl

from genre_core.config import PROJECT_ROOT, load_config
from genre_core.llm.backends import get_backend
from genre_core.llm.backends.local import converted_smollm2
from genre_core.llm.prompts import item_jobs
from genre_core.paths import data_dir

MARK = ("<!-- bench.llm -->", "<!-- /bench.llm -->")  # the generated block in --out; text around it is kept


def movielens_items(root: Path, n: int) -> pl.DataFrame:
    """The first ``n`` items of ml-100k as ``[item_id, title, text, category]`` (text = TMDB overview)."""
    ml, tmdb = root / "ml-100k", root / "ml-100k-tmdb-posters" / "items_tmdb.csv"
    if not (ml / "u.item").is_file():
        raise FileNotFoundError(f"MovieLens 100K not found under {ml} (set GENRE_DATA_DIR)")
    genres = [ln.split("|")[0] for ln in (ml / "u.genre").read_text(encoding="latin-1").splitlines() if ln.strip()]
    overview: dict[str, str] = {}
    if tmdb.is_file():
        with tmdb.open(encoding="utf-8") as fh:
            overview = {r["movie_id"]: r["overview"] for r in csv.DictReader(fh)}
    rows = []
    for line in (ml / "u.item").read_text(encoding="latin-1").splitlines()[:n]:
        f = line.split("|")
        rows.append({"item_id": f[0], "title": f[1], "text": overview.get(f[0]) or None,
                     "category": "|".join(g for g, flag in zip(genres, f[5:]) if flag == "1")})
    return pl.DataFrame(rows, schema={"item_id": pl.String, "title": pl.String, "text": pl.String, "category": pl.String})


def similarity(a: str | None, b: str | None) -> float:
    """Word-level similarity in [0, 1] (difflib ratio over whitespace-split word sequences)."""
    return difflib.SequenceMatcher(None, (a or "").split(), (b or "").split()).ratio()


def sweep(engine: str, base: list[str], jobs: list, sizes: list[int], threads: list[int]) -> dict:
    """Time ``engine`` at every (threads, batch); returns rows, load seconds and the best config's outputs."""
    # "ctranslate2:float32" = that engine at that compute type; "transformers:bf16" / "llama_engine:fp32" = llm.dtype
    name, _, compute = engine.partition(":")
    key = "llm.compute_type" if name == "ctranslate2" else "llm.dtype"
    cfg = load_config(overrides=base + [f"llm.backend={name}"] + ([f"{key}={compute}"] if compute else []))
    backend = get_backend(cfg.llm)
    t0 = time.perf_counter()
    backend._load_tokenizer()
    backend._load_model()
    load_s = time.perf_counter() - t0
    backend.generate([jobs[0].request])  # warm-up, not timed
    prompt_tokens = sum(backend.count_prompt_tokens(j.request) for j in jobs)
    rows, outputs = [], {}
    for th in threads:
        backend.cfg = cfg.llm.model_copy(update={"cpu_threads": th})
        backend.close()
        backend._load_model()  # ctranslate2 fixes its thread count at load; torch sets it per call
        for b in sizes:
            backend.cfg = backend.cfg.model_copy(update={"batch_size": b})
            t0 = time.perf_counter()
            results = []
            step = backend.chunk_size  # what the enrich stage hands one generate() call at this batch size
            for i in range(0, len(jobs), step):
                results += backend.generate([j.request for j in jobs[i:i + step]])
            sec = time.perf_counter() - t0
            new = sum(r.tokens for r in results) - prompt_tokens
            rows.append({"engine": engine, "threads": th, "batch": b, "seconds": sec, "items_s": len(jobs) / sec,
                         "tok_s": new / sec, "ok": sum(r.status == "ok" for r in results)})
            outputs[(th, b)] = [r.output for r in results]
            print(f"{engine:12s} threads={th} batch={b:2d}: {len(jobs) / sec:.3f} items/s ({sec:.1f} s)", flush=True)
    best = max(rows, key=lambda r: r["items_s"])
    backend.close()
    return {"rows": rows, "load_s": load_s, "model_id": backend.model_id, "best": best,
            "outputs": outputs[(best["threads"], best["batch"])]}


def isolated_sweep(engine: str, base: list[str], jobs: list, sizes: list[int], threads: list[int]) -> dict:
    """``sweep`` in a fresh interpreter (spawned), one engine after the other: an engine timed in a process where
    other engines already ran inherits their allocator and thread-pool state (the same engine measured 3.7 items/s
    after three others and 5.2 alone, docs/bench-llm.md)."""
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(sweep, engine, base, jobs, sizes, threads).result()


def agreement(outputs: list, reference: list) -> tuple[float, float]:
    """(share of exactly equal outputs, mean word similarity) of ``outputs`` against ``reference``."""
    pairs = list(zip(outputs, reference))
    exact = sum((x or "").strip() == (y or "").strip() for x, y in pairs) / len(pairs)
    return exact, sum(similarity(x, y) for x, y in pairs) / len(pairs)


def reference_outputs(engine: str, base: list[str], jobs: list, threads: int) -> list:
    """``engine``'s outputs with every prompt generated alone (batch 1: no padding), the model's own greedy answer
    that batched runs approximate (padding changes the shapes of the products, and so the rounding)."""
    name, _, compute = engine.partition(":")
    key = "llm.compute_type" if name == "ctranslate2" else "llm.dtype"
    cfg = load_config(overrides=base + [f"llm.backend={name}", "llm.batch_size=1", f"llm.cpu_threads={threads}"]
                      + ([f"{key}={compute}"] if compute else []))
    backend = get_backend(cfg.llm)
    t0 = time.perf_counter()
    out = [r.output for r in backend.generate([j.request for j in jobs])]
    print(f"{engine:12s} batch 1 reference: {len(jobs) / (time.perf_counter() - t0):.3f} items/s", flush=True)
    backend.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="items to enrich per configuration")
    ap.add_argument("--engines", default="transformers,ctranslate2",
                    help="first one is the reference; ENGINE:COMPUTE_TYPE picks a ctranslate2 compute type")
    ap.add_argument("--batch-sizes", default="1,4,8,16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: llm.max_new_tokens")
    ap.add_argument("--unpadded-reference", action="store_true",
                    help="also compare with the first engine at batch 1 (each prompt alone, no padding: the "
                         "model's own greedy answer); slow, not timed")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "bench-llm.md"))
    args = ap.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    engines = args.engines.split(",")
    base = ["llm.model=smollm2", "llm.device=cpu"] + (
        [f"llm.max_new_tokens={args.max_new_tokens}"] if args.max_new_tokens else [])
    cfg = load_config(overrides=base)
    jobs = item_jobs(cfg.llm, movielens_items(data_dir(cfg), args.n))
    t0 = time.perf_counter()
    src = converted_smollm2()
    convert = {"gguf->safetensors": time.perf_counter() - t0}
    for engine in engines:
        name, _, compute = engine.partition(":")
        if name == "ctranslate2":
            from genre_core.llm.backends.ctranslate2 import converted_ct2  # noqa: PLC0415

            t0 = time.perf_counter()
            converted_ct2(str(src), compute or cfg.llm.compute_type)
            convert[f"safetensors->ct2 {compute or cfg.llm.compute_type}"] = time.perf_counter() - t0
    import transformers  # noqa: F401,PLC0415 - imported before timing: the load figure is the load alone

    load_before = os.getloadavg()[0]
    res = {e: isolated_sweep(e, base, jobs, sizes, threads) for e in engines}
    load_after = os.getloadavg()[0]
    ref = res[engines[0]]
    unpadded = reference_outputs(engines[0], base, jobs, max(threads)) if args.unpadded_reference else None
    sweep_tab = ["| engine | threads | " + " | ".join(f"batch {b} items/s" for b in sizes) + " |",
                 "|---|---:|" + "---:|" * len(sizes)]
    for e in engines:
        for th in threads:
            vals = [r["items_s"] for r in res[e]["rows"] if r["threads"] == th]
            sweep_tab.append(f"| {e} | {th} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    best_tab = ["| engine | model | best threads | best batch | items/s | new tokens/s | ratio vs "
                f"{engines[0]} | ok | exact match | word similarity |"
                + (" exact match, unpadded | word similarity, unpadded |" if unpadded else "") + " load s |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if unpadded else "") + "---:|"]
    for e in engines:
        b = res[e]["best"]
        exact, sim = agreement(res[e]["outputs"], ref["outputs"])
        extra = ""
        if unpadded:
            u_exact, u_sim = agreement(res[e]["outputs"], unpadded)
            extra = f" {u_exact:.0%} | {u_sim:.2f} |"
        best_tab.append(f"| {e} | {res[e]['model_id']} | {b['threads']} | {b['batch']} | {b['items_s']:.3f} | "
                        f"{b['tok_s']:.1f} | {b['items_s'] / ref['best']['items_s']:.2f}x | {b['ok']}/{len(jobs)} | "
                        f"{exact:.0%} | {sim:.2f} |{extra} {res[e]['load_s']:.2f} |")
    env = (f"{len(jobs)} MovieLens 100K items, enrich prompt, greedy, max_new_tokens={cfg.llm.max_new_tokens}; "
           f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
           f"(load average {load_before:.1f} -> {load_after:.1f}); conversions this run: "
           + ", ".join(f"{k} {v:.1f} s" for k, v in convert.items()) + " (0 when cached).")
    text = "\n".join(best_tab) + "\n\nSweep (items/s):\n\n" + "\n".join(sweep_tab) + "\n\n" + env
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = f"python -m bench.llm --n {args.n} --engines {args.engines} --batch-sizes {args.batch_sizes} " \
          f"--threads {args.threads}" + (" --unpadded-reference" if args.unpadded_reference else "")
    block = f"{MARK[0]}\n`{cmd}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{text}\n{MARK[1]}"
    old = out.read_text(encoding="utf-8") if out.is_file() else ""
    if MARK[0] in old and MARK[1] in old:  # replace the generated block, keep the written analysis around it
        head, rest = old.split(MARK[0], 1)
        out.write_text(head + block + rest.split(MARK[1], 1)[1], encoding="utf-8")
    else:
        out.write_text(f"# Local LLM engines side by side\n\n{block}\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
