"""Benchmark inputs: make sure the warehouse holds the interactions and the content vectors.

The split and the evaluation sets come from ``genre_core.models.pipeline.prepare``, so the peers and GENRE's
models see exactly the same training events, validation targets and test targets as ``genre train``.
"""
from __future__ import annotations

import time

from genre_core.config import GenreConfig
from genre_core.warehouse import connect


def _warehouse_counts(cfg: GenreConfig) -> tuple[int, dict[str, int]]:
    with connect(cfg, read_only=True) as con:
        n = con.execute("SELECT count(*) FROM interactions").fetchall()[0][0]
        rows = con.execute("SELECT modality, count(*) FROM item_features GROUP BY modality").fetchall()
    return int(n), {str(m): int(c) for m, c in rows}


def ensure_warehouse(cfg: GenreConfig, progress: bool = False) -> dict[str, float]:
    """Run ingestion when the warehouse has no interactions and the features stage when an enabled modality
    has no vectors yet. Returns the seconds spent per stage (0 when skipped)."""
    from genre_core.features.pipeline import enabled_modalities

    with connect(cfg):  # creates and migrates the file if it does not exist yet
        pass
    spent = {"ingest_s": 0.0, "features_s": 0.0}
    n, per_modality = _warehouse_counts(cfg)
    if n == 0:
        from genre_core.ingest.pipeline import run_ingest

        t0 = time.perf_counter()
        run_ingest(cfg, progress=progress)
        spent["ingest_s"] = time.perf_counter() - t0
    wanted = [name for name, _ in enabled_modalities(cfg.features)]
    if any(per_modality.get(m, 0) == 0 for m in wanted) or spent["ingest_s"] > 0:
        from genre_core.features.pipeline import run_features

        t0 = time.perf_counter()
        run_features(cfg, progress=progress)
        spent["features_s"] = time.perf_counter() - t0
    return spent
