"""Training data in index space: interactions as numpy arrays, content vectors of the whole catalogue.

``load_warehouse_data`` reads the warehouse (one short read-only connection, polars frames) and builds the id
mapping over every item in ``items`` or ``interactions`` (cold items included) and every user.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from genre_core.models.base import IdMap, histories_to_csr

LLM_ITEM_MODALITY = "text_llm"  # LLM-enriched item descriptions (train.hybrid.use_llm_features)
LLM_ENCODER_MODALITY = "text_llmenc"  # item text embedded with a causal LLM's hidden states (features.text_llmenc)
LLM_USER_MODALITY = "profile"  # LLM-written user interest profiles
COLD_GEN_MODALITY = "cold_gen"  # mean text vector of the items the LLM imagined for a cold user


_FIELDS = ("user", "item", "value", "ts", "positive", "negative", "weight")


@dataclass(frozen=True)
class Interactions:
    """Events in index space, all arrays of length n.

    user, item: int64; value: float32 (NaN where none); ts: int64 seconds (history rows get the smallest
    values so they sort first); positive: bool (what ranking losses and metrics use); negative: bool, explicit
    negatives (``events`` role negative, e.g. MIND skips; never positive; default none); weight: float32 loss
    weight of each event from its ``events`` rule (default 1). Rows neither positive nor negative are ignored.
    """

    user: np.ndarray
    item: np.ndarray
    value: np.ndarray
    ts: np.ndarray
    positive: np.ndarray
    negative: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        if self.negative is None:
            object.__setattr__(self, "negative", np.zeros(n, dtype=bool))
        if self.weight is None:
            object.__setattr__(self, "weight", np.ones(n, dtype=np.float32))
        for name in _FIELDS[1:]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"Interactions.{name} has {len(getattr(self, name))} rows, user has {n}")
        if (self.positive & self.negative).any():
            raise ValueError("Interactions: a row cannot be both positive and negative")

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The rows where ``mask`` (bool [n]) is true, or at the given int positions."""
        return Interactions(*(getattr(self, f)[mask] for f in _FIELDS))

    def concat(self, other: Interactions) -> Interactions:
        return Interactions(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS))

    def positives(self) -> Interactions:
        return self.subset(self.positive)

    def negatives(self) -> Interactions:
        """The explicit negatives (e.g. skipped impressions), for the losses that use them."""
        return self.subset(self.negative)

    def csr(self, n_users: int) -> tuple[np.ndarray, np.ndarray]:
        """Positive items per user in time order, distinct: (indptr [n_users + 1], indices [nnz])."""
        indptr, indices, _ = self.csr_values(n_users)
        return indptr, indices

    def csr_values(self, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like ``csr`` plus the value (float32 [nnz], NaN where none) of each kept event."""
        pos = self.positives()
        indptr, indices, rows = histories_to_csr(pos.user, pos.item, pos.ts, n_users)
        return indptr, indices, pos.value[rows]

    @classmethod
    def empty(cls) -> Interactions:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   np.zeros(0, bool))


@dataclass(frozen=True)
class TrainData:
    """What ``Recommender.fit`` gets: the id mapping, training events and content of the whole catalogue."""

    idmap: IdMap
    train: Interactions
    item_features: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> float32 [n_items, d]
    item_feature_mask: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> bool [n_items]
    user_features: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> float32 [n_users, d]
    user_feature_mask: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> bool [n_users]

    def with_train(self, train: Interactions) -> TrainData:
        return replace(self, train=train)

    def histories(self) -> tuple[np.ndarray, np.ndarray]:
        """Training positives per user, time order: CSR (indptr [n_users + 1], indices)."""
        return self.train.csr(self.idmap.n_users)

    def negatives(self) -> Interactions:
        """Explicit training negatives (``events`` role negative): the hook for losses that use them (the
        hybrid's impression-aware term; a sequence model can do the same). Models that ignore negatives only
        read positives (``histories``, ``train.positives()``)."""
        return self.train.negatives()

    def modalities(self, requested: list[str] | None, use_llm: bool = False) -> list[str]:
        """The item modalities a content model uses: ``requested`` (each must be stored, else ValueError) or,
        when None, every stored item modality in the order first stored (text_llm only with ``use_llm``), plugin
        extractors' ones included."""
        if requested is None:
            found = [m for m in self.item_features if use_llm or m != LLM_ITEM_MODALITY]
            if not found:
                raise ValueError(
                    f"no item content vectors to use; stored: {sorted(self.item_features)}. "
                    "Run `genre features` first (or `genre enrich` for text_llm)"
                )
            return found
        names = list(requested) + ([LLM_ITEM_MODALITY] if use_llm and LLM_ITEM_MODALITY not in requested else [])
        missing = [m for m in names if m not in self.item_features]
        if missing:
            raise ValueError(
                f"item modalities {missing} are configured but have no vectors in item_features "
                f"(stored: {sorted(self.item_features)}); run `genre features`/`genre enrich` or change the config"
            )
        return names


def vectors_matrix(frame: pl.DataFrame, index: dict[str, int], n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows (id, vector) -> (float32 [n, d] with zero rows where missing, bool [n] present). Ids not in the
    mapping are ignored; vectors of mixed length raise ValueError naming ``what``."""
    if frame.height == 0:
        raise ValueError(f"{what}: no vectors")
    lengths = frame["vector"].list.len().unique().to_list()
    if len(lengths) != 1:
        raise ValueError(f"{what}: vectors of different lengths {sorted(lengths)}; re-run the feature stage")
    dim = int(lengths[0])
    ids = frame[frame.columns[0]].cast(pl.String).to_list()
    pos = np.array([index.get(i, -1) for i in ids], dtype=np.int64)
    vec = np.asarray(frame["vector"].to_list(), dtype=np.float32).reshape(len(ids), dim)
    keep = pos >= 0
    if not np.isfinite(vec[keep]).all():
        raise ValueError(f"{what}: non-finite values in the stored vectors")
    out = np.zeros((n, dim), dtype=np.float32)
    out[pos[keep]] = vec[keep]
    mask = np.zeros(n, dtype=bool)
    mask[pos[keep]] = True
    return out, mask
