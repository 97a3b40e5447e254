"""Content-only: a user is the (recency-weighted) mean of the content vectors of their history."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genre_core.models.base import Recommender
from genre_core.models.data import TrainData
from genre_core.models.itemknn import history_matrix
from genre_core.models.config import ContentConfig
from genre_core.models.registry import MODELS
from genre_core.models.training import FitReport, timed


def content_item_matrix(data: TrainData, modalities: list[str]) -> np.ndarray:
    """float32 [n_items, sum d_m]: per modality, vectors centred on the catalogue mean and L2-normalised,
    scaled by 1/sqrt(#modalities); items without a modality get zeros there."""
    parts = []
    for m in modalities:
        v = data.item_features[m].astype(np.float32)
        mask = data.item_feature_mask[m]
        if mask.any():
            v = v - v[mask].mean(axis=0, keepdims=True)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
        v[~mask] = 0.0
        parts.append(v / np.sqrt(len(modalities)))
    return np.concatenate(parts, axis=1).astype(np.float32)


@MODELS.register("content")
class ContentOnly(Recommender):
    """score(u, i) = cos(mean of u's history vectors, v_i): scores every catalogue item, cold ones included."""

    scores_cold_items = True

    Config = ContentConfig
    tune_space = {  # default search space of `genre tune` (ranges bracket the shipped defaults)
        "recency_half_life": {"type": "float", "low": 0.5, "high": 100.0, "log": True},
    }
    config: ContentConfig

    def __init__(self, idmap, config: ContentConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.vectors = torch.zeros(idmap.n_items, 0)
        self.modalities: list[str] = []

    def fit(self, data: TrainData, valid: Any = None, **_: Any) -> FitReport:
        with timed() as t:
            self.modalities = data.modalities(self.config.modalities)
            self.vectors = torch.as_tensor(content_item_matrix(data, self.modalities)).to(self.device)
            self.set_histories(*data.histories())
        return FitReport(fit_s=t.seconds)

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = self._check_users(user_idx)
        hist = history_matrix(self, user_idx, self.config.recency_half_life)
        profile = hist @ self.vectors
        profile = profile / profile.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return profile @ self.vectors.T

    def item_vectors(self) -> torch.Tensor:
        return self.vectors

    def _to(self, device: torch.device) -> None:
        self.vectors = self.vectors.to(device)

    def meta(self) -> dict[str, Any]:
        return {"modalities": self.modalities}

    def state(self) -> dict[str, torch.Tensor]:
        return {"vectors": self.vectors}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.vectors = state["vectors"].float()
        self.modalities = list(meta.get("modalities", []))
