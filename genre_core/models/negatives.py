"""Explicit negatives for training (impression-aware losses): per user, time-ordered, looked up by time window.

A training example of a "predict what comes next" model is a user and a time window (from the last input event
to the last target). The explicit negatives of that user inside the window (e.g. the news shown in the same
impression and skipped) are the example's hard negatives; ``pairwise_negative_loss`` pushes each target above
each of them. Used by the hybrid; a sequence model can use the same two pieces.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genre_core.models.base import histories_to_csr
from genre_core.models.data import Interactions


class NegativeWindows:
    """The explicit negatives of ``events`` (rows with ``negative``), grouped per user in time order."""

    def __init__(self, events: Interactions, n_users: int) -> None:
        neg = events.negatives()
        self.count = len(neg)
        indptr, items, rows = histories_to_csr(neg.user, neg.item, neg.ts, n_users) if len(neg) else (
            np.zeros(n_users + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
        ts = neg.ts[rows] if len(neg) else np.zeros(0, np.int64)
        self.t0 = int(ts.min()) if ts.size else 0
        self.span = int(ts.max() - self.t0) + 2 if ts.size else 2
        # one sorted key per negative: user * span + (ts - t0); windows are searchsorted ranges of it
        self.key = torch.as_tensor(users * self.span + (ts - self.t0), dtype=torch.int64)
        self.items = torch.as_tensor(items, dtype=torch.int64)
        self.weight = torch.as_tensor(neg.weight[rows] if len(neg) else np.zeros(0), dtype=torch.float32)

    def __bool__(self) -> bool:
        return self.items.numel() > 0

    def gather(
        self, users: torch.Tensor, t_lo: torch.Tensor, t_hi: torch.Tensor, max_n: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Negatives of ``users`` (int64 [B]) with t_lo <= ts <= t_hi (int64 seconds [B]), the earliest
        ``max_n`` per row: (items int64 [B, M], weight float32 [B, M], valid bool [B, M]), M = max_n."""
        if not self:
            z = torch.zeros(users.numel(), max_n, dtype=torch.int64)
            return z, z.float(), z.bool()
        lo_t = (t_lo - self.t0).clamp(0, self.span - 1)
        hi_t = (t_hi - self.t0).clamp(-1, self.span - 2)
        lo = torch.searchsorted(self.key, users * self.span + lo_t, right=False)
        hi = torch.searchsorted(self.key, users * self.span + hi_t, right=True)
        pos = lo[:, None] + torch.arange(max_n)[None, :]
        valid = pos < hi[:, None]
        pos = pos.clamp_max(self.items.numel() - 1)
        return self.items[pos], torch.where(valid, self.weight[pos], 0.0), valid


def pairwise_negative_loss(
    pos_s: torch.Tensor, tvalid: torch.Tensor, neg_s: torch.Tensor, nweight: torch.Tensor, nvalid: torch.Tensor
) -> torch.Tensor:
    """Mean of w_n * -log sigmoid(s_target - s_negative) over the valid (target, negative) pairs of a batch.

    pos_s float [B, W] target scores, tvalid bool [B, W]; neg_s float [B, M] negative scores, nweight float
    [B, M] (the events rule weight), nvalid bool [B, M]. Returns a scalar (0 when no pair is valid).
    """
    pair = tvalid[:, :, None] & nvalid[:, None, :]
    if not pair.any():
        return pos_s.sum() * 0.0
    loss = -F.logsigmoid(pos_s[:, :, None] - neg_s[:, None, :]) * nweight[:, None, :]
    return loss[pair].sum() / pair.sum()
