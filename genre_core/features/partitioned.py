"""The features stage in three steps, so that embedding can run in partitions on any worker.

1. ``plan_features`` (driver): read the catalogue and the stored state once per modality and decide what to
   embed (items whose content hash or model changed);
2. ``embed_partition``: embed one contiguous slice of a plan's items; a pure function of (config, plan slice)
   that builds its own extractor (the model loads once per worker process) and writes nothing;
3. ``write_partitions`` (driver): gather the slices and store them with ``write_modality`` in one transaction,
   returning the same summary as ``run_features``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genre_core.config import GenreConfig
from genre_core.security.paths import confinement
from genre_core.execution import in_daemon_process, partition_bounds
from genre_core.features.base import Content, FeatureExtractor
from genre_core.features.config import FeaturesConfig, ModalityConfig
from genre_core.device import resolve_device
from genre_core.features.registry import EXTRACTORS
from genre_core.features.store import read_items, stored_state, write_modality
from genre_core.warehouse import connect

log = logging.getLogger(__name__)


def enabled_modalities(features: FeaturesConfig) -> list[tuple[str, ModalityConfig]]:
    """(modality name, section) for every enabled ``ModalityConfig`` section of ``features``, in field order."""
    sections = {name: getattr(features, name) for name in type(features).model_fields}
    sections.update(features.__pydantic_extra__ or {})
    return [(name, s) for name, s in sections.items() if isinstance(s, ModalityConfig) and s.enabled]


def build_extractor(modality: str, section: ModalityConfig, features: FeaturesConfig,
                    device: torch.device) -> FeatureExtractor:
    """Instantiate the extractor registered under ``section.extractor`` (ValueError listing valid names)."""
    return EXTRACTORS.get(section.extractor)(section, features, device)


@dataclass(frozen=True)
class ModalitySlice:
    """One partition of a modality's work: ``contents`` are ``todo[order[start:stop]]`` of its plan (picklable)."""

    modality: str
    section: ModalityConfig
    model_id: str
    start: int
    stop: int
    contents: list[Content]


@dataclass(frozen=True)
class ModalityPlan:
    """What one modality has to embed in this run (``todo`` holds the model inputs)."""

    modality: str
    section: ModalityConfig
    model_id: str
    todo: list[Content]  # items whose content or model changed, in catalogue order
    order: list[int]  # the extractor's batch order over ``todo`` (``FeatureExtractor.batch_order``)
    failures: list[tuple[str, str, str]]  # (item_id, content_hash, reason) for content that cannot be read
    skipped: int  # unchanged items
    live_item_ids: list[str]  # the whole catalogue
    t0: float = field(default_factory=time.perf_counter)  # driver clock at planning

    def slices(self, partitions: int) -> list[ModalitySlice]:
        """At most ``partitions`` slices of whole batches, in batch order ([] when nothing to embed).

        Cutting at batch boundaries of the extractor's own order means every batch a partition embeds is a batch
        the in-process run embeds too (same inputs, same padding), so the vectors are the same.
        """
        size = self.section.batch_size
        n_batches = -(-len(self.todo) // size)
        out = []
        for a, b in partition_bounds(n_batches, partitions):
            start, stop = a * size, min(b * size, len(self.todo))
            out.append(ModalitySlice(self.modality, self.section, self.model_id, start, stop,
                                     [self.todo[i] for i in self.order[start:stop]]))
        return out


@dataclass
class EmbeddedSlice:
    """The result of embedding one ``ModalitySlice``: vectors of the items that worked."""

    start: int
    stop: int
    item_ids: list[str]
    content_hashes: list[str]
    vectors: np.ndarray  # float32 [len(item_ids), d], unit rows
    failures: list[tuple[str, str, str]]  # (item_id, content_hash, reason)
    seconds: float  # model time
    batch_size: int  # after any CUDA out-of-memory halving
    oom_retries: int
    device: str


def plan_features(cfg: GenreConfig) -> list[ModalityPlan]:
    """One plan per enabled modality (``features.text``, ``features.image``, ...); reads the warehouse briefly.

    Raises RuntimeError when the items table is empty.
    """
    with connect(cfg) as con:
        items = read_items(con)
        states = {m: stored_state(con, m) for m, _ in enabled_modalities(cfg.features)}
    if items.height == 0:
        raise RuntimeError("the items table is empty: run `genre ingest` before `genre features`")
    device = resolve_device(cfg.features.device)
    plans = []
    for modality, section in enabled_modalities(cfg.features):
        extractor = build_extractor(modality, section, cfg.features, device)
        model_id, state = extractor.model_id, states[modality]
        extractor.data_root, extractor.data_base = confinement(cfg)  # untrusted paths stay in the data dir
        contents = extractor.prepare(items)
        todo = [c for c in contents if c.error is None and state.get(c.item_id) != (model_id, c.content_hash)]
        failures = [(c.item_id, c.content_hash, c.error) for c in contents if c.error is not None]
        plans.append(ModalityPlan(
            modality=modality, section=section, model_id=model_id, todo=todo,
            order=list(extractor.batch_order([c.payload for c in todo])), failures=failures,
            skipped=len(contents) - len(todo) - len(failures), live_item_ids=items["item_id"].to_list(),
        ))
    return plans


def embed_partition(cfg: GenreConfig, part: ModalitySlice, progress: bool = False) -> EmbeddedSlice:
    """Embed one slice with the plan's extractor on this process's device; writes nothing.

    In a daemonic process (a Dask worker), image decoding runs in-process (``num_workers = 0``): such a process
    may not start the DataLoader's worker processes, and the partitions already run in parallel.
    """
    section = part.section
    if in_daemon_process() and getattr(section, "num_workers", 0):
        section = section.model_copy(update={"num_workers": 0})
    extractor = build_extractor(part.modality, section, cfg.features, resolve_device(cfg.features.device))
    if extractor.model_id != part.model_id:
        raise RuntimeError(f"features.{part.modality}: this worker's model is {extractor.model_id!r} but the plan was "
                           f"made for {part.model_id!r}; workers must see the same model files as the driver")
    t0 = time.perf_counter()
    embedded = extractor.embed([c.payload for c in part.contents], progress=progress)
    ok = [part.contents[p] for p in embedded.positions]
    return EmbeddedSlice(
        start=part.start, stop=part.stop, item_ids=[c.item_id for c in ok],
        content_hashes=[c.content_hash for c in ok], vectors=embedded.vectors,
        failures=[(part.contents[p].item_id, part.contents[p].content_hash, r) for p, r in embedded.failures],
        seconds=time.perf_counter() - t0, batch_size=extractor.batch_size, oom_retries=extractor.oom_retries,
        device=str(extractor.device),
    )


def write_partitions(cfg: GenreConfig, plan: ModalityPlan, slices: list[EmbeddedSlice]) -> dict[str, Any]:
    """Store the gathered slices of ``plan`` in one transaction; returns the modality's ``run_features`` summary
    (``embed_seconds`` is the sum of the slices' model time, ``items_per_s`` per second of it)."""
    slices = sorted(slices, key=lambda s: s.start)
    edges = [0] + [x for s in slices for x in (s.start, s.stop)] + [len(plan.todo)]
    if any(edges[i] != edges[i + 1] for i in range(0, len(edges), 2)):
        raise ValueError(f"features.{plan.modality}: slices {[(s.start, s.stop) for s in slices]} do not cover "
                         f"the {len(plan.todo)} items to embed exactly once")
    ok = [s for s in slices if s.item_ids]
    vectors = np.concatenate([s.vectors for s in ok]) if ok else np.zeros((0, 0), dtype=np.float32)
    item_ids = [i for s in slices for i in s.item_ids]
    hashes = [h for s in slices for h in s.content_hashes]
    failures = plan.failures + [f for s in slices for f in s.failures]
    with connect(cfg) as con:
        stats = write_modality(con, plan.modality, plan.model_id, item_ids, hashes, vectors, failures,
                               plan.live_item_ids)
    embed_s = sum(s.seconds for s in slices)
    for item_id, _, reason in failures[:5]:
        log.info("features[%s]: item %s failed: %s", plan.modality, item_id, reason)
    return {
        "embedded": len(item_ids),
        "skipped": plan.skipped,
        "failed": len(failures),
        "removed": stats.removed,
        "items": len(plan.live_item_ids),
        "dim": int(vectors.shape[1]) if item_ids else None,
        "seconds": round(time.perf_counter() - plan.t0, 3),
        "embed_seconds": round(embed_s, 3),
        "items_per_s": round(len(item_ids) / embed_s, 1) if item_ids and embed_s > 0 else 0.0,
        "batch_size": min((s.batch_size for s in slices), default=plan.section.batch_size),
        "oom_retries": sum(s.oom_retries for s in slices),
        "model_id": plan.model_id,
        "device": slices[0].device if slices else str(resolve_device(cfg.features.device)),
        "partitions": len(slices),
    }


def run_features_partitioned(cfg: GenreConfig, partitions: int, progress: bool = False) -> dict[str, Any]:
    """Plan, embed every partition in this process, write (``run_features`` is the one-partition case)."""
    summary = {}
    for plan in plan_features(cfg):
        summary[plan.modality] = write_partitions(cfg, plan, [embed_partition(cfg, part, progress)
                                                              for part in plan.slices(partitions)])
        log.info("features[%s]: %s", plan.modality, summary[plan.modality])
    return summary
