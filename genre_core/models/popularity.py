"""Popularity: every user gets the items with the most training positives (optionally time-decayed)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genre_core.models.base import Recommender
from genre_core.models.data import TrainData
from genre_core.models.config import PopularityConfig
from genre_core.models.registry import MODELS
from genre_core.models.training import FitReport, timed


@MODELS.register("popularity")
class Popularity(Recommender):
    """Score = number of training positives of the item; with ``half_life_days`` each event weighs
    0.5 ** (age / half_life), age measured from the last training event. Items never seen score 0."""

    Config = PopularityConfig
    config: PopularityConfig

    def __init__(self, idmap, config: PopularityConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.counts = torch.zeros(idmap.n_items, dtype=torch.float32)

    def fit(self, data: TrainData, valid: Any = None, **_: Any) -> FitReport:
        with timed() as t:
            pos = data.train.positives()
            weights = np.ones(len(pos), dtype=np.float64)
            half_life = self.config.half_life_days
            if half_life and len(pos):
                age_days = (pos.ts.max() - pos.ts) / 86_400.0
                weights = 0.5 ** (age_days / half_life)
            counts = np.bincount(pos.item, weights=weights, minlength=self.idmap.n_items)
            self.counts = torch.as_tensor(counts, dtype=torch.float32).to(self.device)
            self.set_histories(*data.histories())
        return FitReport(fit_s=t.seconds)

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = self._check_users(user_idx)
        return self.counts.unsqueeze(0).expand(user_idx.numel(), -1).clone()

    def _to(self, device: torch.device) -> None:
        self.counts = self.counts.to(device)

    def state(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.counts = state["counts"].float()
