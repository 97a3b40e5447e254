"""Model ``cooc``: score(u, j) = sum over the user's last ``window`` training items i of co-occurrence(i, j)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from genre_core.models.base import Recommender
from genre_core.models.registry import MODELS
from genre_core.models.training import FitReport, timed


class CoocConfig(BaseModel):
    """``train.cooc``."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(10, ge=1)  # most recent training items of a user that vote


@MODELS.register("cooc")
class Cooc(Recommender):
    Config = CoocConfig
    config: CoocConfig

    def __init__(self, idmap, config: CoocConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.co = torch.zeros(idmap.n_items, idmap.n_items)

    def fit(self, data: Any, valid: Any = None, **_: Any) -> FitReport:
        with timed() as t:
            indptr, indices = data.histories()
            self.set_histories(indptr, indices)
            x = np.zeros((self.idmap.n_users, self.idmap.n_items), dtype=np.float32)
            x[np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), indices] = 1.0
            co = torch.from_numpy(x.T @ x)
            co.fill_diagonal_(0.0)
            self.co = co.to(self.device)
        return FitReport(fit_s=t.seconds)

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        seen = self.seen(user_idx)
        votes = torch.zeros(seen.n_rows, self.idmap.n_items)
        for r in range(seen.n_rows):
            votes[r, torch.from_numpy(seen.row(r)[-self.config.window:])] = 1.0
        return votes.to(self.device) @ self.co

    def _to(self, device: torch.device) -> None:
        self.co = self.co.to(device)

    def state(self) -> dict[str, torch.Tensor]:
        return {"co": self.co}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.co = state["co"].float()
