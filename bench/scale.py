"""Scale-out benchmark: scoring + top-K in partitions, in process vs on a Dask cluster, and PostgreSQL publish rate.

``python -m bench.scale`` builds synthetic worlds (users x items, d-dimensional factors, a few seen items per
user), plans each run with the stage's own ``plan_scoring``, then scores the same ``execution.partitions``
partitions (1) one after the other in this process (``run_job_locally``'s path) and (2) as tasks on a
``distributed.LocalCluster`` (what ``execution.runner: dask`` runs through Prefect), and checks that both give
the same rows. The merged result is then published to a scratch PostgreSQL server (COPY + atomic attach) and to
the DuckDB serving file, for rows/s. Prints a markdown table and writes it to ``docs/scaling.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from genre_core.config import GenreConfig
from genre_core.recommend.data import WarehouseData
from genre_core.recommend.pipeline import RecommendJob, score_users
from genre_core.recommend.partitions import plan_scoring
from genre_core.recommend.publish import RunRecord, publish
from genre_core.recommend.merge import merge_partitions

DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"


@dataclass
class IdMap:
    users: list[str]
    items: list[str]


class FactorModel:
    """score = U[u] @ V.T (the Recommender contract: idmap, score, item_vectors, user_history, to)."""

    def __init__(self, idmap: IdMap, user_f: torch.Tensor, item_f: torch.Tensor) -> None:
        self.idmap, self.user_f, self.item_f = idmap, user_f, item_f

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_f[user_idx] @ self.item_f.T

    def item_vectors(self) -> torch.Tensor:
        return self.item_f

    def user_history(self, user_idx: torch.Tensor) -> list[np.ndarray]:
        return [np.ones(1, dtype=np.int64)] * len(user_idx)  # every user is warm

    def to(self, device: torch.device | str) -> FactorModel:
        self.user_f, self.item_f = self.user_f.to(device), self.item_f.to(device)
        return self


def synthetic(n_users: int, n_items: int, d: int, seen: int, seed: int) -> tuple[FactorModel, WarehouseData]:
    """A factor model and warehouse inputs with ``seen`` distinct interactions per user (all positive)."""
    rng = np.random.default_rng(seed)
    users = [f"u{i:07d}" for i in range(n_users)]
    items = [f"i{j:06d}" for j in range(n_items)]
    gen = torch.Generator().manual_seed(seed)
    model = FactorModel(IdMap(users, items), torch.randn(n_users, d, generator=gen) / d ** 0.5,
                        torch.randn(n_items, d, generator=gen))
    cols = (rng.integers(0, n_items - seen, n_users)[:, None] + np.arange(seen)[None, :]).ravel()
    inter = pl.DataFrame({"user_id": pl.Series(users).gather(np.repeat(np.arange(n_users), seen)),
                          "item_id": pl.Series(items).gather(cols), "positive": True})
    return model, WarehouseData(users=pl.DataFrame({"user_id": users}), interactions=inter, content=None)


def _cfg(k: int, partitions: int) -> GenreConfig:
    cfg = GenreConfig()
    cfg.recommend.k, cfg.recommend.device, cfg.recommend.similar_items = k, "cpu", False
    cfg.execution.partitions = partitions
    return cfg


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_size(n_users: int, n_items: int, args: argparse.Namespace, client: Any) -> tuple[dict, pl.DataFrame]:
    cfg = _cfg(args.k, args.partitions)
    t = time.perf_counter()
    model, data = synthetic(n_users, n_items, args.dim, args.seen, args.seed)
    plan = plan_scoring(model, data, cfg.recommend, torch.device("cpu"))
    job = RecommendJob(model=model, model_name="bench", model_version="1", model_run_id="-", plan=plan,
                       similar=False, device="cpu", started=datetime.now(UTC).replace(tzinfo=None), t0=t)
    plan_s = time.perf_counter() - t
    parts = job.user_partitions(args.partitions)
    t = time.perf_counter()
    local = merge_partitions(plan, [score_users(cfg, model, p) for p in parts], None, "cpu")
    local_s = time.perf_counter() - t
    t = time.perf_counter()
    model_f = client.scatter(model, broadcast=True)  # one copy per worker, not one per task
    futures = [client.submit(score_users, cfg, model_f, p, pure=False) for p in parts]
    gathered = client.gather(futures)
    t_merge = time.perf_counter()
    dask = merge_partitions(plan, gathered, None, "cpu")
    dask_s, merge_s = time.perf_counter() - t, time.perf_counter() - t_merge
    differ = int((local.recs["item_id"] != dask.recs["item_id"]).sum()) if local.recs.height == dask.recs.height else -1
    cells = n_users * n_items
    row = {"users": f"{n_users:,}", "items": f"{n_items:,}", "d": args.dim, "rows": f"{local.recs.height:,}",
           "plan s": round(plan_s, 1), "local s": round(local_s, 1), "dask s": round(dask_s, 1),
           "dask gather+merge s": round(merge_s, 1), "local Mcells/s": round(cells / local_s / 1e6),
           "dask Mcells/s": round(cells / dask_s / 1e6), "rows differing": differ,
           "driver peak RSS MB (cumulative)": round(_peak_rss_mb())}
    return row, local.recs


def bench_publish(recs: pl.DataFrame, args: argparse.Namespace) -> list[dict]:
    """rows/s of the PostgreSQL publish (COPY + attach, fsync on) and of the DuckDB serving-file publish."""
    from bench.pgserver import find_pg_bin, start_pg_server
    from genre_core.recommend.postgres import PASSWORD_ENV, publish_postgres

    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    run = RunRecord("bench-duckdb", "bench", "1", "-", args.k, recs["user_id"].n_unique(), recs.height, 0, now, now)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        publish(Path(tmp) / "serving.duckdb", recs, run, keep_runs=2)
        s = time.perf_counter() - t
        out.append({"target": "DuckDB serving file (write aside + os.replace)", "rows": f"{recs.height:,}",
                    "seconds": round(s, 2), "rows/s": f"{recs.height / s:,.0f}"})
    if find_pg_bin() is None:
        print("PostgreSQL binaries not found: skipping the PostgreSQL publish")
        return out
    server = start_pg_server(fsync=True)
    os.environ[PASSWORD_ENV] = server.password
    try:
        for i in range(2):  # the second publish also prunes nothing yet but attaches next to a live run
            t = time.perf_counter()
            publish_postgres(server.url, recs, RunRecord(f"bench-pg-{i}", "bench", "1", "-", args.k,
                             run.users, recs.height, 0, now, now), keep_runs=2)
            s = time.perf_counter() - t
            out.append({"target": f"PostgreSQL 15 (COPY + attach), publish {i + 1}", "rows": f"{recs.height:,}",
                        "seconds": round(s, 2), "rows/s": f"{recs.height / s:,.0f}"})
    finally:
        server.stop()
    return out


def md_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000x100000,100000x100000,1000000x10000",
                   help="comma-separated USERSxITEMS (default: %(default)s)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seen", type=int, default=5, help="seen items per user")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes (1 thread each)")
    p.add_argument("--publish-size", default="100000x100000", help="which size's rows to publish (USERSxITEMS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(DOC), help="markdown file to write ('' = do not write)")
    args = p.parse_args(argv)
    import distributed

    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in args.sizes.split(",") if s]
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    rows, to_publish = [], None
    try:
        for n_users, n_items in sizes:
            print(f"scoring {n_users:,} users x {n_items:,} items ...", flush=True)
            row, recs = bench_size(n_users, n_items, args, client)
            print(row, flush=True)
            rows.append(row)
            if f"{n_users}x{n_items}" == args.publish_size.lower():
                to_publish = recs
    finally:
        client.close()
        cluster.close()
    publish_rows = bench_publish(to_publish, args) if to_publish is not None else []
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
               f"{torch.__version__} ({torch.get_num_threads()} threads in process; Dask: {args.workers} workers "
               f"x 1 thread), load average at the end {os.getloadavg()[0]:.1f}")
    text = (f"### Scoring + top-{args.k}: in process vs Dask ({args.partitions} partitions)\n\n{md_table(rows)}\n\n"
            + (f"### Publication\n\n{md_table(publish_rows)}\n\n" if publish_rows else "")
            + f"Machine: {machine}. Command: `python -m bench.scale --sizes {args.sizes} --partitions "
              f"{args.partitions} --workers {args.workers}`.\n")
    print(text)
    if args.out:
        write_doc(Path(args.out), text)
    return 0


def write_doc(path: Path, results: str) -> None:
    """Replace the text between the result markers in ``path`` (the rest of the document is prose)."""
    begin, end = "<!-- bench.scale results: begin -->", "<!-- bench.scale results: end -->"
    doc = path.read_text(encoding="utf-8") if path.exists() else f"# Scaling GENRE\n\n{begin}\n{end}\n"
    if begin not in doc or end not in doc:
        doc = doc.rstrip() + f"\n\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{results}{end}{tail}", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
