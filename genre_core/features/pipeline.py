"""The features stage: for every enabled modality, embed the items whose content or model changed.

One implementation (``genre_core.features.partitioned``): plan what changed per modality (content hashes vs
the stored (model_id, content_hash) pairs), embed it in partitions of whole batches, write vectors and failures
in one short transaction per modality. The local run is the one-partition case; ``execution.runner: dask`` runs
the same partitions as Prefect tasks on a cluster (flows/features.py).
"""
from __future__ import annotations

from typing import Any

from genre_core.config import GenreConfig
from genre_core.features.partitioned import build_extractor, enabled_modalities, run_features_partitioned

__all__ = ["build_extractor", "enabled_modalities", "run_features"]


def run_features(cfg: GenreConfig, progress: bool = True) -> dict[str, Any]:
    """Run every enabled feature modality (``features.text``, ``features.image``, ...) against the warehouse.

    Returns ``{modality: {embedded, skipped, failed, removed, items, dim, seconds, embed_seconds,
    items_per_s, batch_size, oom_retries, model_id, device, partitions}}``: ``embedded`` items got a new vector,
    ``skipped`` were unchanged (same content hash and model), ``failed`` are recorded in ``feature_failures``
    (re-checked on every run), ``removed`` vectors were deleted (items gone, items that now fail, old model);
    ``items_per_s`` is embedded items per second of model time (0 when nothing was embedded), ``seconds``
    the whole modality's wall time.
    """
    return run_features_partitioned(cfg, 1, progress=progress)
