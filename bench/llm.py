"""Content-enricher throughput of the local ``transformers`` backend with the real SmolLM2-135M-Instruct.

    python -m bench.llm --n 16                  # batch sizes 1, 4, 8 on CPU; writes docs/bench-llm.md

Reads the first ``--n`` MovieLens 100K items (titles, genres, TMDB overviews) from the data dir, renders the
configured ``enrich`` prompt, warms the model up, then times ``generate`` over all items at each batch size
(greedy, ``llm.max_new_tokens``). The model loads from the safetensors copy under $GENRE_HOME/cache/llm
(converted from the shipped GGUF on first use; the conversion time is reported separately).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import polars as pl

from genre_core.config import PROJECT_ROOT, load_config
from genre_core.llm.backends.local import TransformersBackend, converted_smollm2
from genre_core.llm.prompts import item_jobs
from genre_core.paths import data_dir


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="items to enrich per batch size")
    ap.add_argument("--batch-sizes", default="1,4,8")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: llm.max_new_tokens")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--threads", type=int, default=None, help="llm.cpu_threads (default: torch's default)")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "bench-llm.md"))
    args = ap.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    cfg = load_config(overrides=["llm.backend=transformers", "llm.model=smollm2", f"llm.device={args.device}"]
                      + ([f"llm.max_new_tokens={args.max_new_tokens}"] if args.max_new_tokens else [])
                      + ([f"llm.cpu_threads={args.threads}"] if args.threads else []))
    jobs = item_jobs(cfg.llm, movielens_items(data_dir(cfg), args.n))
    t0 = time.perf_counter()
    converted_smollm2()
    convert_s = time.perf_counter() - t0
    backend = TransformersBackend(cfg.llm)
    import transformers  # noqa: F401,PLC0415 - imported before timing: the load figure is the load alone

    t0 = time.perf_counter()
    backend._load_tokenizer()
    backend._load_model()
    load_s = time.perf_counter() - t0
    backend.generate([jobs[0].request])  # warm-up, not timed
    import torch  # noqa: PLC0415

    threads = args.threads or torch.get_num_threads()
    load_before = os.getloadavg()[0]
    rows = []
    for b in sizes:
        backend.cfg = cfg.llm.model_copy(update={"batch_size": b})
        t0 = time.perf_counter()
        results = []
        for i in range(0, len(jobs), b):
            results += backend.generate([j.request for j in jobs[i:i + b]])
        sec = time.perf_counter() - t0
        prompt = sum(backend.count_prompt_tokens(j.request) for j in jobs)
        new_tokens = sum(r.tokens for r in results) - prompt
        ok = [r for r in results if r.status == "ok"]
        rows.append((b, len(jobs), sec, len(jobs) / sec, new_tokens / sec, len(ok),
                     sum(len(r.output or "") for r in ok) / max(len(ok), 1)))
    load_after = os.getloadavg()[0]
    header = ("| batch | items | seconds | items/s | new tokens/s | ok | mean chars |\n"
              "|---:|---:|---:|---:|---:|---:|---:|")
    table = "\n".join([header] + [f"| {b} | {n} | {s:.1f} | {ips:.3f} | {tps:.1f} | {ok} | {ch:.0f} |"
                                  for b, n, s, ips, tps, ok, ch in rows])
    env = (f"{backend.model_id} on {backend.device} ({platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores, torch {torch.__version__}, {threads} threads); greedy, "
           f"max_new_tokens={cfg.llm.max_new_tokens}; load average {load_before:.1f} -> {load_after:.1f} "
           f"(other jobs share the cores). Model load from the safetensors cache: {load_s:.2f} s; "
           f"GGUF conversion this run: {convert_s:.1f} s (0 when already cached).")
    print(table)
    print(env)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = f"python -m bench.llm --n {args.n}" + (f" --threads {args.threads}" if args.threads else "")
    out.write_text(f"# LLM content-enricher throughput (`{cmd}`)\n\n{table}\n\n{env}\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
