"""Matrix factorisation trained with BPR (pure collaborative): score = <p_u, q_i> + b_i."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from genre_core.models.data import TrainData
from genre_core.models.config import BPRConfig
from genre_core.models.registry import MODELS
from genre_core.models.training import TorchRecommender


@MODELS.register("bpr")
class BPRMF(TorchRecommender):
    """Uniform negatives sampled in one ``torch.randint`` per batch (vectorised); items never seen in
    training keep their random initial factors and a zero bias."""

    Config = BPRConfig
    config: BPRConfig

    def __init__(self, idmap, config: BPRConfig | None = None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        dim = self.config.dim
        self.user_emb = torch.nn.Embedding(idmap.n_users, dim)
        self.item_emb = torch.nn.Embedding(idmap.n_items, dim)
        self.item_bias = torch.nn.Embedding(idmap.n_items, 1)

    def _modules(self) -> list[torch.nn.Module]:
        return [self.user_emb, self.item_emb, self.item_bias]

    def _setup(self, data: TrainData, gen: torch.Generator) -> None:
        for emb in (self.user_emb, self.item_emb):
            torch.nn.init.normal_(emb.weight, std=0.1, generator=gen)
        torch.nn.init.zeros_(self.item_bias.weight)
        self.to(self.device)
        pos = data.train.positives()
        self._users = torch.as_tensor(pos.user)
        self._items = torch.as_tensor(pos.item)
        params = [p for m in self._modules() for p in m.parameters()]
        lr = self.config.lr
        if self.config.optimizer == "adagrad":
            self._opt = torch.optim.Adagrad(params, lr=lr)
        else:
            self._opt = torch.optim.Adam(params, lr=lr)

    def _train_epoch(self, gen: torch.Generator) -> dict[str, float]:
        n = self._users.numel()
        bs = self.config.batch_size
        wd = self.config.weight_decay
        perm = torch.randperm(n, generator=gen)
        neg_all = torch.randint(0, self.idmap.n_items, (n,), generator=gen)
        total, steps = 0.0, 0
        for start in range(0, n, bs):
            idx = perm[start: start + bs]
            u = self._users[idx].to(self.device)
            i = self._items[idx].to(self.device)
            j = neg_all[start: start + bs].to(self.device)
            with self.autocast():
                pu, qi, qj = self.user_emb(u), self.item_emb(i), self.item_emb(j)
                diff = (pu * (qi - qj)).sum(-1) + (self.item_bias(i) - self.item_bias(j)).squeeze(-1)
                loss = -F.logsigmoid(diff.float()).mean()
                reg = wd * (pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()) / idx.numel()
            self.step(loss + reg, self._opt)
            total += float(loss.detach())
            steps += 1
        return {"loss": total / max(steps, 1)}

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = self._check_users(user_idx).to(self.device)
        with torch.no_grad():
            return (self.user_emb(user_idx) @ self.item_emb.weight.T + self.item_bias.weight.T).float()

    def item_vectors(self) -> torch.Tensor:
        return self.item_emb.weight.detach()

    def _to(self, device: torch.device) -> None:
        for m in self._modules():
            m.to(device)

    def state(self) -> dict[str, torch.Tensor]:
        return {"user_emb": self.user_emb.weight.detach(), "item_emb": self.item_emb.weight.detach(),
                "item_bias": self.item_bias.weight.detach()}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        with torch.no_grad():
            self.user_emb.weight.copy_(state["user_emb"])
            self.item_emb.weight.copy_(state["item_emb"])
            self.item_bias.weight.copy_(state["item_bias"])
