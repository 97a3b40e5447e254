"""The features stage: for every enabled modality, embed the items whose content or model changed.

Per modality: read the catalogue and the stored (model_id, content_hash) pairs (short connection), hash every
item's content, embed only what changed (no connection held), then write vectors and failures in one short
transaction (``genre_core.features.store.write_modality``).
"""
from __future__ import annotations

import logging
import time
from typing import Any

import torch

from genre_core.config import GenreConfig
from genre_core.security.paths import confinement
from genre_core.features.base import FeatureExtractor
from genre_core.features.config import FeaturesConfig, ModalityConfig
from genre_core.features.device import resolve_device
from genre_core.features.registry import get_extractor
from genre_core.features.store import read_items, stored_state, write_modality
from genre_core.warehouse import connect

log = logging.getLogger(__name__)


def enabled_modalities(features: FeaturesConfig) -> list[tuple[str, ModalityConfig]]:
    """(modality name, section) for every enabled ``ModalityConfig`` section of ``features``, in field order."""
    out = []
    for name in type(features).model_fields:
        section = getattr(features, name)
        if isinstance(section, ModalityConfig) and section.enabled:
            out.append((name, section))
    return out


def build_extractor(modality: str, section: ModalityConfig, features: FeaturesConfig,
                    device: torch.device) -> FeatureExtractor:
    """Instantiate the extractor registered under ``section.extractor`` (ValueError listing valid names)."""
    try:
        cls = get_extractor(section.extractor)
    except ValueError as exc:
        raise ValueError(f"features.{modality}.extractor: {exc}") from None
    return cls(section, features, device)


def run_modality(cfg: GenreConfig, modality: str, extractor: FeatureExtractor, progress: bool) -> dict[str, Any]:
    """Embed what changed for one modality and store it; returns its summary (see ``run_features``)."""
    t0 = time.perf_counter()
    with connect(cfg) as con:
        items = read_items(con)
        state = stored_state(con, modality)
    if items.height == 0:
        raise RuntimeError("the items table is empty: run `genre ingest` before `genre features`")
    model_id = extractor.model_id
    extractor.data_root, extractor.data_base = confinement(cfg)  # untrusted paths stay in the data dir
    contents = extractor.prepare(items)
    todo = [c for c in contents if c.error is None and state.get(c.item_id) != (model_id, c.content_hash)]
    failures = [(c.item_id, c.content_hash, c.error) for c in contents if c.error is not None]
    skipped = len(contents) - len(todo) - len(failures)
    t_embed = time.perf_counter()
    embedded = extractor.embed([c.payload for c in todo], progress=progress)
    embed_s = time.perf_counter() - t_embed
    failures += [(todo[p].item_id, todo[p].content_hash, reason) for p, reason in embedded.failures]
    ok = [todo[p] for p in embedded.positions]
    with connect(cfg) as con:
        stats = write_modality(
            con, modality, model_id,
            [c.item_id for c in ok], [c.content_hash for c in ok], embedded.vectors,
            failures, items.get_column("item_id").to_list(),
        )
    seconds = time.perf_counter() - t0
    for item_id, _, reason in failures[:5]:
        log.info("features[%s]: item %s failed: %s", modality, item_id, reason)
    return {
        "embedded": len(ok),
        "skipped": skipped,
        "failed": len(failures),
        "removed": stats.removed,
        "items": len(contents),
        "dim": int(embedded.vectors.shape[1]) if len(ok) else None,
        "seconds": round(seconds, 3),
        "embed_seconds": round(embed_s, 3),
        "items_per_s": round(len(ok) / embed_s, 1) if len(ok) and embed_s > 0 else 0.0,
        "batch_size": extractor.batch_size,
        "oom_retries": extractor.oom_retries,
        "model_id": model_id,
        "device": str(extractor.device),
    }


def run_features(cfg: GenreConfig, progress: bool = True) -> dict:
    """Run every enabled feature modality (``features.text``, ``features.image``, ...) against the warehouse.

    Returns ``{modality: {embedded, skipped, failed, removed, items, dim, seconds, embed_seconds,
    items_per_s, batch_size, oom_retries, model_id, device}}``: ``embedded`` items got a new vector,
    ``skipped`` were unchanged (same content hash and model), ``failed`` are recorded in ``feature_failures``
    (re-checked on every run), ``removed`` vectors were deleted (items gone, items that now fail, old model);
    ``items_per_s`` is embedded items per second of model time (0 when nothing was embedded), ``seconds``
    the whole modality's wall time.
    """
    device = resolve_device(cfg.features.device)
    summary: dict[str, Any] = {}
    for modality, section in enabled_modalities(cfg.features):
        extractor = build_extractor(modality, section, cfg.features, device)
        summary[modality] = run_modality(cfg, modality, extractor, progress)
        log.info("features[%s]: %s", modality, summary[modality])
    return summary
