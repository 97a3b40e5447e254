"""Item-kNN: shrunk (asymmetric) cosine over training co-occurrences, top neighbours kept per item."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genre_core.models.base import Recommender
from genre_core.models.data import TrainData
from genre_core.models.config import ItemKNNConfig
from genre_core.models.registry import MODELS
from genre_core.models.training import FitReport, timed


def recency_weights(lengths: torch.Tensor, half_life: float | None) -> torch.Tensor:
    """Weights of the events of CSR histories with the given lengths: 0.5 ** (events_after / half_life),
    1 for the most recent; all ones when ``half_life`` is None. float32 [sum(lengths)]."""
    total = int(lengths.sum())
    if half_life is None or total == 0:
        return torch.ones(total)
    ends = torch.repeat_interleave(torch.cumsum(lengths, 0), lengths)
    after = ends - 1 - torch.arange(total)
    return torch.pow(0.5, after.float() / half_life)


def history_matrix(model: Recommender, user_idx: torch.Tensor, half_life: float | None) -> torch.Tensor:
    """float32 [b, n_items] on the model's device: each user's training items, recency-weighted."""
    seen = model.seen(user_idx)
    lengths = torch.from_numpy(seen.lengths())
    rows = torch.repeat_interleave(torch.arange(seen.n_rows), lengths)
    out = torch.zeros(seen.n_rows, model.idmap.n_items)
    out[rows, torch.from_numpy(seen.indices)] = recency_weights(lengths, half_life)
    return out.to(model.device)


@MODELS.register("itemknn")
class ItemKNN(Recommender):
    """sim(i, j) = co(i, j) / (n_i ** alpha * n_j ** (1 - alpha) + shrink), keeping each item's ``neighbors``
    most similar items; score(u, j) = sum over history items i of w_i * sim(i, j)."""

    Config = ItemKNNConfig
    config: ItemKNNConfig

    def __init__(self, idmap, config: ItemKNNConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.sim_t = torch.zeros(0)

    def fit(self, data: TrainData, valid: Any = None, **_: Any) -> FitReport:
        with timed() as t:
            indptr, indices = data.histories()
            self.set_histories(indptr, indices)
            n = self.idmap.n_items
            rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            x = torch.sparse_coo_tensor(torch.as_tensor(np.stack([rows, indices])), torch.ones(len(indices)),
                                        (self.idmap.n_users, n), check_invariants=False).coalesce()
            xt = x.t().coalesce()
            counts = torch.as_tensor(np.bincount(indices, minlength=n), dtype=torch.float32)
            alpha, shrink = self.config.alpha, self.config.shrink
            k = min(self.config.neighbors, max(n - 1, 1))
            blocks_v, blocks_i = [], []
            block = max(1, 2_000_000 // max(n, 1))
            dense_x = x.to_dense() if n * self.idmap.n_users <= 50_000_000 else None
            for s in range(0, n, block):
                e = min(s + block, n)
                sub = torch.index_select(xt, 0, torch.arange(s, e))
                co = torch.sparse.mm(sub, dense_x) if dense_x is not None else torch.sparse.mm(sub, x).to_dense()
                denom = counts[s:e, None].pow(alpha) * counts[None, :].pow(1 - alpha) + shrink
                sim = torch.where(denom > 0, co / denom.clamp_min(1e-12), torch.zeros(()))
                sim[torch.arange(e - s), torch.arange(s, e)] = 0.0
                top = torch.topk(sim, k, dim=1)
                blocks_v.append(top.values)
                blocks_i.append(top.indices)
            vals, cols = torch.cat(blocks_v), torch.cat(blocks_i)
            rows_t = torch.arange(n).repeat_interleave(k)
            # stored transposed: sim_t[j, i] = sim(i, j), so scores = sim_t @ history^T
            self.sim_t = torch.sparse_coo_tensor(torch.stack([cols.reshape(-1), rows_t]), vals.reshape(-1), (n, n),
                                                 check_invariants=False).coalesce().to(self.device)
        return FitReport(fit_s=t.seconds)

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = self._check_users(user_idx)
        hist = history_matrix(self, user_idx, self.config.recency_half_life)
        return torch.sparse.mm(self.sim_t, hist.t().contiguous()).t().contiguous()

    def item_vectors(self) -> torch.Tensor | None:
        return None

    def _to(self, device: torch.device) -> None:
        self.sim_t = self.sim_t.to(device)

    def state(self) -> dict[str, torch.Tensor]:
        s = self.sim_t.coalesce()
        return {"sim_t_indices": s.indices(), "sim_t_values": s.values()}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        n = self.idmap.n_items
        self.sim_t = torch.sparse_coo_tensor(state["sim_t_indices"], state["sim_t_values"], (n, n),
                                             check_invariants=False).coalesce()
