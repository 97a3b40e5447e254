"""The extractor base class: it owns batching, the CUDA out-of-memory fallback, normalisation and progress.

A subclass says how an item becomes content (``prepare``: read + hash, no model needed) and how a batch of
inputs becomes vectors (``encode``); the pipeline decides what to embed from the content hashes and stores
the result (``genre_core.features.store``).
"""
from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_core.features.config import FeaturesConfig, ModalityConfig
from genre_core.device import autocast_dtype, inference_context

if TYPE_CHECKING:  # polars only types the catalogue frame here; the encoders do not need it
    import polars as pl

log = logging.getLogger(__name__)


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Content:
    """One item's content for a modality: ``payload`` is what ``batches`` turns into model input.

    ``error`` set means the content could not be read (missing file, empty text); such items are recorded in
    ``feature_failures`` without running the model. ``content_hash`` is still set (it hashes the reason).
    """

    item_id: str
    content_hash: str
    payload: Any = None
    error: str | None = None


@dataclass
class Batch:
    """Positions (into the payload list) of the inputs in ``inputs``, plus positions that failed to decode."""

    positions: list[int]
    inputs: Any  # sliceable: a list of strings, a tensor [b, ...]
    failures: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Embedded:
    """The outcome of ``embed``: vectors of the payloads that worked, reasons for those that did not."""

    positions: list[int]  # payload positions, row i of ``vectors`` belongs to ``positions[i]``
    vectors: np.ndarray  # float32 [len(positions), dim], L2-normalised rows
    failures: list[tuple[int, str]]  # (payload position, reason)


class FeatureExtractor(ABC):
    """Base of every extractor. Subclasses set ``modality_kind`` and implement the abstract methods.

    ``encode`` runs inside ``torch.inference_mode()`` and, on CUDA, autocast; it returns raw pooled features
    ``[b, d]`` on the device. The base class L2-normalises them in fp32 and moves them to numpy.
    """

    name: ClassVar[str] = ""  # set by @EXTRACTORS.register(name)
    Config: ClassVar[type[ModalityConfig]] = ModalityConfig  # its section type, ``features.<modality>``

    def __init__(self, section: ModalityConfig, features: FeaturesConfig, device: torch.device) -> None:
        if not isinstance(section, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(section).__name__}")
        self.section = section
        self.cfg = section  # the same section; subclasses annotate ``cfg`` with their own section type
        self.device = device
        self.dtype = autocast_dtype(device, features.precision)
        self.batch_size = section.batch_size  # may shrink on CUDA out-of-memory, for the rest of the run
        self.oom_retries = 0

    # --- what subclasses implement -------------------------------------------------------------------------
    @property
    @abstractmethod
    def model_id(self) -> str:
        """A string that changes whenever the vectors would change for the same content; cheap (no model load)."""

    @abstractmethod
    def prepare(self, items: pl.DataFrame) -> list[Content]:
        """Read and hash every item's content (one ``Content`` per row of ``items``, same order)."""

    @abstractmethod
    def encode(self, inputs: Any) -> torch.Tensor:
        """Model forward for one batch (a slice of ``Batch.inputs``) -> float tensor ``[b, d]``."""

    def batch_order(self, payloads: Sequence[Any]) -> list[int]:
        """Positions of ``payloads`` in the order ``batches`` takes them: every batch is the next ``batch_size`` of
        this order (default: as given). A partitioned run cuts its work at batch boundaries of this order, so it
        embeds exactly the batches an in-process run would (``genre_core.features.partitioned``)."""
        return list(range(len(payloads)))

    def batches(self, payloads: Sequence[Any]) -> Iterator[Batch]:
        """Group payloads into batches of ``batch_size`` in ``batch_order`` (as lists). Override to decode."""
        order = self.batch_order(payloads)
        for start in range(0, len(order), self.batch_size):
            positions = order[start : start + self.batch_size]
            yield Batch(positions, [payloads[i] for i in positions])

    # --- what the base class owns ----------------------------------------------------------------------------
    def embed(self, payloads: Sequence[Any], progress: bool = False) -> Embedded:
        """Embed ``payloads`` -> ``Embedded`` (vectors float32 ``[n_ok, d]``, unit L2 norm per row)."""
        positions: list[int] = []
        chunks: list[np.ndarray] = []
        failures: list[tuple[int, str]] = []
        bar = tqdm(total=len(payloads), desc=f"features[{self.name}]", unit="item", disable=not progress)
        try:
            with inference_context(self.device, self.dtype):
                for batch in self.batches(payloads):
                    failures.extend(batch.failures)
                    if batch.positions:
                        chunks.append(self._forward(batch.inputs))
                        positions.extend(batch.positions)
                    bar.update(len(batch.positions) + len(batch.failures))
        finally:
            bar.close()
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
        return Embedded(positions, vectors, failures)

    def _forward(self, inputs: Any) -> np.ndarray:
        """Run ``encode`` over ``inputs`` in slices of ``batch_size``; halve it on CUDA OOM and retry."""
        out: list[np.ndarray] = []
        start, n = 0, len(inputs)
        while start < n:
            size = min(self.batch_size, n - start)
            oom = False
            try:
                feats = self.encode(inputs[start : start + size])
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                oom = True
            if oom:  # outside the except block, so the failed batch's tensors can be freed
                self.batch_size = max(1, size // 2)
                self.oom_retries += 1
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                log.warning("%s: CUDA out of memory at batch %d; retrying with batch size %d",
                            self.name, size, self.batch_size)
                continue
            if feats.ndim != 2 or feats.shape[0] != size:
                raise RuntimeError(f"{type(self).__name__}.encode returned shape {tuple(feats.shape)} for {size} inputs")
            feats = torch.nn.functional.normalize(feats.float(), dim=1)
            out.append(feats.cpu().numpy().astype(np.float32, copy=False))
            start += size
        return np.concatenate(out)
