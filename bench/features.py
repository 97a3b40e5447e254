"""Benchmark: the features stage's encoders vs a plain ``transformers``/torch loop over the same model and inputs.

    python -m bench.features [--device cpu|cuda|auto] [--n N] [--image-n N] [--repeats R]

Inputs: ml-100k + TMDB items from the data dir ($GENRE_DATA_DIR or ../shared/data), texts rendered with the
configured template, poster files; repeated cyclically when N exceeds the catalogue. Both sides share the
loaded model and batch size, run under ``inference_mode`` (+ the same autocast on CUDA), L2-normalise and move
vectors to the CPU. "plain" takes inputs in catalogue order; "plain sorted" gets them pre-sorted by length, so
framework / plain-sorted isolates the framework's overhead. Timings are the best of R interleaved repeats
after a warm-up. Peak memory: RSS high-water mark (VmHWM, reset per phase via /proc/self/clear_refs) on CPU,
``torch.cuda.max_memory_allocated`` on CUDA. Prints a markdown table and writes it into
docs/bench-features.md (one section per device, others kept).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench-features.md"


def load_inputs(data: Path, template: str) -> tuple[list[str], list[str]]:
    """(rendered texts of all 1,682 ml-100k items, paths of the 1,663 existing posters)."""
    from genre_core.features.text import render_text

    ml, tmdb = data / "ml-100k", data / "ml-100k-tmdb-posters"
    if not (ml / "u.item").is_file() or not (tmdb / "items_tmdb.csv").is_file():
        raise SystemExit(f"bench.features needs ml-100k and ml-100k-tmdb-posters under {data} (set GENRE_DATA_DIR)")
    genres = [ln.split("|")[0] for ln in (ml / "u.genre").read_text(encoding="latin-1").splitlines() if "|" in ln]
    overview: dict[str, str] = {}
    with (tmdb / "items_tmdb.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            overview.setdefault(row["movie_id"], row["overview"])
    texts, paths = [], []
    for line in (ml / "u.item").read_text(encoding="latin-1").splitlines():
        f = line.split("|")
        cat = "|".join(g for g, flag in zip(genres, f[5:24]) if flag == "1")
        texts.append(render_text(template, {"title": f[1], "category": cat, "text": overview.get(f[0])}))
        poster = tmdb / "posters" / f"{f[0]}.jpg"
        if poster.is_file():
            paths.append(str(poster))
    return texts, paths


def synthetic_inputs(tokenizer: Any, n_text: int, n_img: int, folder: Path, seed: int = 0) -> tuple[list[str], list[str]]:
    """Length-matched stand-ins where the data cannot travel: texts of 20-115 words drawn from the tokenizer's
    vocabulary (real rendered ml-100k texts: 21-113 words for the 5th-95th percentile, median 56) and
    92x138 JPEGs of smooth noise (like the TMDB thumbnails), at most 512 distinct files, cycled."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) >= 3]
    words.sort()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(20, 116)))) for _ in range(n_text)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(n_img, 512)):
        small = rng.integers(0, 256, size=(12, 8, 3), dtype=np.uint8)
        path = folder / f"{i}.jpg"
        Image.fromarray(small).resize((92, 138), Image.Resampling.BICUBIC).save(path, quality=85)
        paths.append(str(path))
    return texts, paths


def cycle(xs: list[Any], n: int) -> list[Any]:
    return [xs[i % len(xs)] for i in range(n)]


class Meter:
    """Best-of wall time and peak memory of a phase on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self, fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
        """(best seconds, peak MB) of ``fn`` over ``repeats`` runs."""
        best = float("inf")
        peak = 0.0
        for _ in range(repeats):
            cpu_reset = self._reset()
            t0 = time.perf_counter()
            fn()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            best = min(best, time.perf_counter() - t0)
            peak = max(peak, self._peak(cpu_reset))
        return best, peak

    def _reset(self) -> bool:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return True
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def _peak(self, was_reset: bool) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:" if was_reset else "VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def plain_text_loop(tok: Any, model: torch.nn.Module, texts: list[str], bs: int, max_length: int,
                    device: torch.device, dtype: torch.dtype | None) -> np.ndarray:
    """The textbook loop: tokenize a batch, forward, mean-pool over the mask, L2-normalise, to numpy."""
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for i in range(0, len(texts), bs):
            enc = tok(texts[i : i + bs], padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
            hidden = model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
    return np.concatenate(out)


def plain_image_loop(model: torch.nn.Module, paths: list[str], bs: int, device: torch.device,
                     dtype: torch.dtype | None) -> np.ndarray:
    """Decode + resize 224 + (x-127)/128 in this process, EfficientNet features, average pool, normalise."""
    from PIL import Image

    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for i in range(0, len(paths), bs):
            arrs = []
            for p in paths[i : i + bs]:
                with Image.open(p) as im:
                    arrs.append(np.asarray(im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), np.float32))
            x = torch.from_numpy((np.stack(arrs) - 127.0) / 128.0).permute(0, 3, 1, 2).to(device)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            pooled = model.extract_features(x).mean(dim=(2, 3)).float()
            out.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
    return np.concatenate(out)


def row(name: str, n: int, bs: int, secs: float, peak: float, ref: float | None = None) -> dict[str, Any]:
    ips = n / secs
    return {"path": name, "n": n, "batch": bs, "items/s": ips, "ratio": ips / ref if ref else None, "peak MB": peak}


def bench_text(cfg: Any, texts: list[str], sweep: list[int], repeats: int, meter: Meter) -> list[dict[str, Any]]:
    from genre_core.features.text import TextExtractor

    ext = TextExtractor(cfg.features.text, cfg.features, meter.device)
    tok, model = ext.load()
    bs, n, ml = cfg.features.text.batch_size, len(texts), cfg.features.text.max_length
    ordered = sorted(texts, key=len, reverse=True)
    ext.embed(texts[: 2 * bs])  # warm-up (kernels, allocator)
    plain_text_loop(tok, model, texts[: 2 * bs], bs, ml, meter.device, ext.dtype)
    fw_t = plain_t = sorted_t = float("inf")
    fw_m = plain_m = sorted_m = 0.0
    for _ in range(repeats):  # interleaved, so drifting machine load hits every path alike
        t, m = meter(lambda: ext.embed(texts), 1)
        fw_t, fw_m = min(fw_t, t), max(fw_m, m)
        t, m = meter(lambda: plain_text_loop(tok, model, texts, bs, ml, meter.device, ext.dtype), 1)
        plain_t, plain_m = min(plain_t, t), max(plain_m, m)
        t, m = meter(lambda: plain_text_loop(tok, model, ordered, bs, ml, meter.device, ext.dtype), 1)
        sorted_t, sorted_m = min(sorted_t, t), max(sorted_m, m)
    rows = [row("text: plain transformers loop", n, bs, plain_t, plain_m),
            row("text: plain loop, pre-sorted", n, bs, sorted_t, sorted_m, n / plain_t),
            row("text: genre TextExtractor", n, bs, fw_t, fw_m, n / plain_t)]
    rows[-1]["ratio_sorted"] = (n / fw_t) / (n / sorted_t)
    for b in sweep:
        ext.batch_size = b
        t, m = meter(lambda: ext.embed(texts), repeats)
        rows.append(row("text: genre, sweep", n, b, t, m))
    return rows


def bench_image(cfg: Any, paths: list[str], sweep: list[int], repeats: int, meter: Meter) -> list[dict[str, Any]]:
    from genre_core.features.image import ImageExtractor
    from genre_core.features.image_models import _load_efficientnet

    ext = ImageExtractor(cfg.features.image, cfg.features, meter.device)
    bs, n = cfg.features.image.batch_size, len(paths)
    ext.embed(paths[:bs])  # warm-up + load
    model = _load_efficientnet(meter.device)
    plain_image_loop(model, paths[:bs], bs, meter.device, ext.dtype)
    fw_t = plain_t = float("inf")
    fw_m = plain_m = 0.0
    for _ in range(repeats):
        t, m = meter(lambda: ext.embed(paths), 1)
        fw_t, fw_m = min(fw_t, t), max(fw_m, m)
        t, m = meter(lambda: plain_image_loop(model, paths, bs, meter.device, ext.dtype), 1)
        plain_t, plain_m = min(plain_t, t), max(plain_m, m)
    rows = [row("image: plain torch loop (decode inline)", n, bs, plain_t, plain_m),
            row(f"image: genre ImageExtractor ({cfg.features.image.num_workers} workers)", n, bs, fw_t, fw_m, n / plain_t)]
    for b in sweep:
        ext.batch_size = b
        t, m = meter(lambda: ext.embed(paths), repeats)
        rows.append(row("image: genre, sweep", n, b, t, m))
    return rows


def to_markdown(rows: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| path | n | batch | items/s | vs plain | peak MB |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        if "ratio_sorted" in r:
            ratio += f" ({r['ratio_sorted']:.2f}x vs pre-sorted)"
        lines.append(f"| {r['path']} | {r['n']} | {r['batch']} | {r['items/s']:.1f} | {ratio} | {r['peak MB']:.0f} |")
    return "\n".join(lines) + "\n"


def write_doc(section_key: str, body: str) -> None:
    """Replace this device's section of docs/bench-features.md, keeping the others."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else (
        "# Features benchmark\n\n`python -m bench.features` (see bench/features.py for what is measured).\n\n")
    pattern = re.compile(rf"<!-- {re.escape(section_key)} -->.*?<!-- /{re.escape(section_key)} -->\n", re.S)
    block = f"<!-- {section_key} -->\n{body}<!-- /{section_key} -->\n"
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from genre_core.config import load_config
    from genre_core.device import resolve_device
    from genre_core.paths import data_dir

    ap = argparse.ArgumentParser(prog="python -m bench.features", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--n", type=int, default=None, help="texts (default 256 on CPU, 4096 on CUDA)")
    ap.add_argument("--image-n", type=int, default=None, help="images (default 128 on CPU, 4096 on CUDA)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--text-sweep", default=None, help="comma-separated batch sizes")
    ap.add_argument("--image-sweep", default=None, help="comma-separated batch sizes")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/bench-features.md")
    ap.add_argument("--synthetic", action="store_true",
                    help="length-matched synthetic texts and JPEGs instead of ml-100k + TMDB (where the data is absent)")
    args = ap.parse_args(argv)
    cfg = load_config(None, [f"features.device={args.device}", *args.overrides])
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    n_text = args.n or (4096 if gpu else 256)
    n_img = args.image_n or (4096 if gpu else 128)
    if args.synthetic:
        from genre_core.features.text import TextExtractor

        tok = TextExtractor(cfg.features.text, cfg.features, device).load()[0]
        texts, paths = synthetic_inputs(tok, n_text, n_img, Path(tempfile.mkdtemp(prefix="bench-features-")))
    else:
        texts, paths = load_inputs(data_dir(cfg), cfg.features.text.template)
    sweep_t = [int(x) for x in (args.text_sweep or ("64,128,256,512" if gpu else "16,32,64,128")).split(",")]
    sweep_i = [int(x) for x in (args.image_sweep or ("64,128,256" if gpu else "16,32,64")).split(",")]
    meter = Meter(device)
    rows = bench_text(cfg, cycle(texts, n_text), sweep_t, args.repeats, meter)
    if cfg.features.image.model == "efficientnet-lite0":
        rows += bench_image(cfg, cycle(paths, n_img), sweep_i, args.repeats, meter)
    name = torch.cuda.get_device_name(device) if gpu else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    header = (f"## {device.type}: {name}\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
              f"text model `{cfg.features.text.model}` (max_length {cfg.features.text.max_length}), image model "
              f"`{cfg.features.image.model}`, precision {cfg.features.precision} (autocast "
              f"{'on' if gpu and cfg.features.precision != 'fp32' else 'off'}), best of {args.repeats}, "
              f"load average {os.getloadavg()[0]:.1f}, inputs "
              f"{'synthetic (length-matched)' if args.synthetic else 'ml-100k + TMDB'}.")
    md = to_markdown(rows, header)
    print(md)
    if not args.no_doc:
        write_doc(device.type, md)
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
