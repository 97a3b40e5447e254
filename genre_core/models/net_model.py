"""Plumbing shared by the torch models built around one ``nn.Module`` with per-modality item feature buffers
(``hybrid``, ``sasrec``): the module list, the cached item table dropped on mode/device changes, the state dict,
filling the item feature buffers, which items get an id embedding, and the explicit-negatives windows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genre_core.models.data import TrainData
from genre_core.models.negatives import NegativeWindows
from genre_core.models.training import TorchRecommender


def _norm_rows(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``v`` [N, d] centred on the mean of the rows in ``mask`` and L2-normalised; other rows zero."""
    v = v - v[mask].mean(axis=0, keepdims=True) if mask.any() else v
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-8)
    v[~mask] = 0.0
    return v.astype(np.float32)


class NetRecommender(TorchRecommender):
    """A ``TorchRecommender`` whose parameters live in ``self.net`` and whose eval-mode item table is cached in
    ``self._cache`` (None when stale)."""

    def __init__(self, idmap, config=None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.net: Any = None
        self.modalities: list[str] = []
        self._cache: Any = None  # the eval-mode item table(s), rebuilt on first use
        self._negs: NegativeWindows | None = None

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net] if self.net is not None else []

    def train_mode(self, on: bool) -> None:
        super().train_mode(on)
        self._cache = None

    def _to(self, device: torch.device) -> None:
        if self.net is not None:
            self.net.to(device)
        self._cache = None

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.net.state_dict().items()} if self.net is not None else {}

    def _load_net_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load ``state`` into the built ``net``, switch it to eval mode and drop the cached table."""
        self.net.load_state_dict(state)
        self.net.eval()
        self._cache = None

    def _item_dims(self, data: TrainData) -> dict[str, int]:
        """{modality: vector size} of the model's item modalities."""
        return {m: data.item_features[m].shape[1] for m in self.modalities}

    def _meta_item_dims(self) -> dict[str, int]:
        """{modality: vector size} read from the built net's towers ({} before it is built)."""
        net = self.net
        return {m: int(net.towers[m].in_features) for m in self.modalities} if net else {}

    def _fill_items(self, net: torch.nn.Module, data: TrainData) -> Any:
        """Under no_grad: copy the normalised item vectors and masks of ``self.modalities`` into ``net``'s
        ``feat_<m>``/``mask_<m>`` buffers, set up ``self._negs`` (when ``negative_weight`` > 0) and mark the items
        with training events (and explicit negatives when that term is on) in ``net.has_id``. Returns the
        training positives (``data.train.positives()``)."""
        n = self.idmap.n_items
        with torch.no_grad():
            for m in self.modalities:
                getattr(net, f"feat_{m}")[:n] = torch.as_tensor(
                    _norm_rows(data.item_features[m], data.item_feature_mask[m]))
                getattr(net, f"mask_{m}")[:n] = torch.as_tensor(data.item_feature_mask[m], dtype=torch.float32)
            pos = data.train.positives()
            self._negs = NegativeWindows(data.train, self.idmap.n_users) if self.config.negative_weight > 0 \
                else None
            # items with training events get an id embedding; explicit negatives count when the term is on
            ided = pos.item if not self._negs else np.concatenate([pos.item, data.negatives().item])
            net.has_id[:n] = torch.as_tensor(np.bincount(ided, minlength=n) > 0, dtype=torch.float32)
        return pos

    def _users_with_two_events(self) -> torch.Tensor:
        """int64 [U']: the users with at least 2 training events (a training example needs an input and a target)."""
        lengths = self.hist_indptr[1:] - self.hist_indptr[:-1]
        return torch.nonzero(lengths >= 2).flatten()
