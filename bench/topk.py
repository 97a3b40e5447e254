"""Benchmark: blocked scoring + top-K (the recommend stage's path) vs a naive full score matrix + full sort.

    python -m bench.topk [--device cpu|cuda|auto] [--sizes 10000x10000,100000x50000,1000000x100000]

Synthetic user/item factors (d=64 by default) and 10 random already-seen items per user. Each measurement runs in
a fresh subprocess so peak memory is its own: RSS high-water mark above the inputs (VmHWM after resetting it via
/proc/self/clear_refs) on CPU, ``torch.cuda.max_memory_allocated`` above the inputs on GPU. The blocked run also
publishes its result to a DuckDB serving file (``genre_core.recommend.publish``) and reports rows written per
second. The naive baseline is skipped ("n/a (would need X GB)") where its score matrix + sort would not fit.
Prints a markdown table and writes it into docs/bench-topk.md (one section per device, others kept).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# memory of the naive baseline per score cell, measured: CPU ~16 B (float32 scores + int64 argsort output + the
# sort's working copy); CUDA ~32 B (the radix sort double-buffers keys and int64 values): 79 GB at 50k x 50k on H100
NAIVE_BYTES_PER_CELL = {"cpu": 16, "cuda": 32}


def _proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns the figures as a dict."""
    import numpy as np
    import torch

    from genre_core.device import block_budget_bytes, block_rows, resolve_device
    from genre_core.ranking import CSR, topk_blocked

    device = resolve_device(spec["device"])
    n_users, n_items, d, k = spec["users"], spec["items"], spec["dim"], spec["k"]
    gen = torch.Generator(device=device).manual_seed(spec["seed"])
    users = torch.randn(n_users, d, generator=gen, device=device) / d**0.25
    items = torch.randn(n_items, d, generator=gen, device=device) / d**0.25
    rng = np.random.default_rng(spec["seed"])
    rows = np.repeat(np.arange(n_users, dtype=np.int64), spec["seen"])
    seen = CSR.from_pairs(rows, rng.integers(0, n_items, size=rows.size), n_users)
    del rows
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base_gpu = torch.cuda.memory_allocated(device)
    _warm_up(spec["method"], users[:64], items[:512], k, device)
    reset_ok = _reset_rss_peak()
    base_rss = _proc_status_kb("VmRSS")
    out: dict[str, Any] = {"method": spec["method"], "device": str(device), "rss_reset": reset_ok}
    t0 = time.perf_counter()
    if spec["method"] == "blocked":
        budget = block_budget_bytes(device, spec["budget_mb"], 0.5)
        block = block_rows(n_items, budget, n_users)
        top = topk_blocked(lambda idx: users[idx] @ items.T, np.arange(n_users), n_items, k, seen=seen,
                           device=device, block_size=block)
        if cuda:
            torch.cuda.synchronize()
        out["block"] = block
        result_items = top.items
    else:
        with torch.inference_mode():
            scores = users @ items.T
            cols = torch.from_numpy(seen.indices).to(device)
            rows_t = torch.repeat_interleave(torch.arange(n_users, device=device),
                                             torch.from_numpy(seen.lengths()).to(device))
            scores[rows_t, cols] = float("-inf")
            order = torch.argsort(scores, dim=1, descending=True)[:, :k]
            result_items = order.cpu().numpy()
            if cuda:
                torch.cuda.synchronize()
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = (_proc_status_kb("VmHWM") - base_rss) / 1024
    if cuda:
        out["peak_gpu_mb"] = (torch.cuda.max_memory_allocated(device) - base_gpu) / 2**20
    check = min(n_users, 2000)  # fingerprint of the first users' lists, compared across methods
    out["fingerprint"] = int(np.asarray(result_items[:check], dtype=np.int64).sum() % 1_000_000_007)
    if spec["method"] == "blocked" and spec["write"]:
        out.update(_write(top, n_users, n_items))
    return out


def _warm_up(method: str, users: Any, items: Any, k: int, device: Any) -> None:
    """Run the method once on a small slice so one-off costs (CUDA context, cuBLAS, kernel loading) are not timed."""
    import numpy as np
    import torch

    from genre_core.ranking import topk_blocked

    if method == "blocked":
        topk_blocked(lambda idx: users[idx] @ items.T, np.arange(len(users)), len(items), k, device=device,
                     block_size=16)
    else:
        torch.argsort(users @ items.T, dim=1, descending=True).cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()


def _write(top: Any, n_users: int, n_items: int) -> dict[str, Any]:
    """Publish the result to a DuckDB serving file; rows/s of the publish (Arrow bulk insert, fsync, swap)."""
    import polars as pl

    from genre_core.recommend.publish import RunRecord, publish
    from genre_core.recommend.partitions import rows_frame

    user_ids = pl.Series("user_id", [f"u{i}" for i in range(n_users)])
    item_ids = pl.Series("item_id", [f"i{j}" for j in range(n_items)])
    frame = rows_frame(user_ids, top, None, item_ids, ("user_id", "item_id", "because_item_id"))
    now = datetime.now(UTC).replace(tzinfo=None)
    run = RunRecord("bench", "synthetic", "0", "-", top.items.shape[1], n_users, frame.height, 0, now, now)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        t0 = time.perf_counter()
        path = publish(Path(tmp) / "serving.duckdb", frame, run, keep_runs=1)
        seconds = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
    return {"write_rows": frame.height, "write_seconds": seconds, "write_rows_per_s": frame.height / seconds,
            "file_mb": size_mb}


def _available_bytes(device: str) -> tuple[int, str]:
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free * 0.9), "GPU"
    return _proc_status_meminfo_kb("MemAvailable") * 1024 * 8 // 10, "RAM"


def _proc_status_meminfo_kb(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/meminfo")


def _run_child(spec: dict[str, Any], time_limit: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.topk", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=time_limit)
    except subprocess.TimeoutExpired:
        return {"skipped": f"skipped (> {time_limit:.0f} s limit)"}
    found = re.findall(r"^RESULT (.*)$", proc.stdout, flags=re.M)
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"skipped": f"failed (rc {proc.returncode}: {tail[0][:80]})"}
    return json.loads(found[-1])


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def run_bench(args: argparse.Namespace) -> str:
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    header = ("| users x items | method | block (users) | time (s) | users/s | peak mem above inputs (MB) "
              "| write rows/s (DuckDB) | speedup vs naive |")
    lines = [header, "|" + "---|" * 8]
    started = time.perf_counter()
    for size in args.sizes.split(","):
        n_users, n_items = (int(x) for x in size.lower().split("x"))
        base = {"device": device, "users": n_users, "items": n_items, "dim": args.dim, "k": args.k,
                "seen": args.seen, "seed": args.seed, "budget_mb": args.budget_mb, "write": not args.no_write}
        blocked = _run_child({**base, "method": "blocked"}, args.time_limit)
        need = n_users * n_items * NAIVE_BYTES_PER_CELL["cuda" if device.startswith("cuda") else "cpu"]
        avail, where = _available_bytes(device)
        if need > avail:
            naive = {"skipped": f"n/a (would need {need / 1e9:.0f} GB, {where} has {avail / 1e9:.0f} GB usable)"}
        elif args.no_naive:
            naive = {"skipped": "not run (--no-naive)"}
        else:
            naive = _run_child({**base, "method": "naive"}, args.time_limit)
        mem_key = "peak_gpu_mb" if device.startswith("cuda") else "peak_rss_mb"
        for res in (blocked, naive):
            method = "blocked top-K" if res is blocked else "naive full sort"
            if "skipped" in res:
                lines.append(f"| {n_users:,} x {n_items:,} | {method} | - | {res['skipped']} | - | - | - | - |")
                continue
            speedup = None
            if res is blocked and "seconds" in naive:
                speedup = naive["seconds"] / res["seconds"]
                if naive["fingerprint"] != res["fingerprint"]:
                    speedup_note = " (lists differ!)"
                else:
                    speedup_note = " (same lists)"
            else:
                speedup_note = ""
            mem = res.get(mem_key)
            if mem_key == "peak_gpu_mb":
                mem_txt = f"{_fmt(mem, '.0f')} GPU / {_fmt(res.get('peak_rss_mb'), '.0f')} RSS"
            else:
                mem_txt = _fmt(mem, ".0f")
            lines.append(
                f"| {n_users:,} x {n_items:,} | {method} | {res.get('block', '-')} | {res['seconds']:.2f} "
                f"| {n_users / res['seconds']:,.0f} | {mem_txt} "
                f"| {_fmt(res.get('write_rows_per_s'), ',.0f')} | "
                f"{(_fmt(speedup, '.1f') + 'x' + speedup_note) if speedup else '-'} |"
            )
        print(lines[-2] + "\n" + lines[-1], flush=True)
    total = time.perf_counter() - started
    return "\n".join(lines) + f"\n\nTotal wall time {total:.0f} s.\n"


def _device_title(device: str) -> str:
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def write_doc(path: Path, title: str, body: str, args: argparse.Namespace) -> None:
    """Replace (or add) this device's section in the markdown file, keeping other devices' sections."""
    import torch

    intro = ("# Benchmark: blocked top-K vs naive full sort\n\n"
             "Generated by `python -m bench.topk` (see bench/topk.py for method). Sections per device.\n")
    text = path.read_text() if path.exists() else intro
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"## {title}\n\n{stamp}, torch {torch.__version__}, d={args.dim}, K={args.k}, "
               f"{args.seen} seen items/user, CPU block budget {args.budget_mb} MB "
               f"(GPU: half of free memory).\n\n{body}")
    pattern = re.compile(rf"^## {re.escape(title.split(':')[0])}:.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _m: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.topk", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--sizes", default="10000x10000,100000x50000,1000000x100000", help="USERSxITEMS,...")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seen", type=int, default=10, help="random already-seen items per user")
    p.add_argument("--budget-mb", type=int, default=512, help="CPU block budget (recommend.memory_budget_mb)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=900, help="seconds per measurement")
    p.add_argument("--no-naive", action="store_true")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--out", default=str(ROOT / "docs" / "bench-topk.md"), help="markdown file ('' = none)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    title = _device_title(args.device)
    print(f"## {title}", flush=True)
    body = run_bench(args)
    print(body)
    if args.out:
        write_doc(Path(args.out), title, body, args)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
