"""The sequence network: SASRec-style causal self-attention over content-aware item embeddings.

Shapes: N items (+1 padding row at index N), d = ``dim``, B users, L = ``max_len`` history slots, left-padded
so the most recent event is always in slot L-1 (positions count back from the newest event, which suits short
histories: every user fills the most recent slots).

* item embedding e_i = h_i * id_i + sum over modalities m of mask_i^m * Linear_m(x_i^m), where x^m are the
  stored content vectors (centred, unit norm, frozen), h_i = 1 for items with a training id (0 for cold items,
  and for a random ``id_dropout`` share of items in each training step), so cold items live on content alone;
* sequence: x = dropout(e + pos) -> ``layers`` pre-LN blocks (causal multi-head attention, GELU MLP) -> LN;
* score(u, i) = <x_u[L-1], e_i> (the output table is the input table, as in SASRec).

Dropout draws from an explicit ``torch.Generator`` so a CPU run repeats exactly from the seed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout drawing from ``gen`` (no-op when ``gen`` is None or p == 0)."""
    if gen is None or p <= 0:
        return x
    keep = (torch.rand(x.shape, generator=gen) >= p).to(x.device, x.dtype)
    return x * keep / (1.0 - p)


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + MLP(LN(x)); x [B, L, d]."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(B, L, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, heads, L, d/heads]
        x = x + dropout(self.proj(a.transpose(1, 2).reshape(B, L, d)), p, gen)
        return x + dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), p, gen)


class SASRecNet(nn.Module):
    def __init__(self, n_items: int, item_dims: dict[str, int], dim: int, heads: int, layers: int,
                 max_len: int) -> None:
        super().__init__()
        self.n_items, self.dim, self.max_len = n_items, dim, max_len
        self.item_id = nn.Embedding(n_items + 1, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.towers = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in item_dims.items()})
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        for m, d in item_dims.items():  # frozen content (row N: padding, zero)
            self.register_buffer(f"feat_{m}", torch.zeros(n_items + 1, d))
            self.register_buffer(f"mask_{m}", torch.zeros(n_items + 1))
        self.register_buffer("has_id", torch.zeros(n_items + 1))

    def reset_parameters(self, gen: torch.Generator) -> None:
        """N(0, 0.02) weights, zero biases, unit LayerNorm gains; drawn from ``gen``."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif ".ln" in name or name.startswith("ln_"):
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)

    def item_table(self, id_keep: torch.Tensor | None = None) -> torch.Tensor:
        """float [N + 1, d] item embeddings (row N, padding, is zero). ``id_keep`` float [N + 1] multiplies
        the id part (training-time id dropout); None keeps every trained id."""
        h = self.has_id if id_keep is None else self.has_id * id_keep
        e = self.item_id.weight * h[:, None]
        for m, tower in self.towers.items():
            e = e + tower(getattr(self, f"feat_{m}")) * getattr(self, f"mask_{m}")[:, None]
        return e

    def encode(self, items: torch.Tensor, table: torch.Tensor, p: float = 0.0,
               gen: torch.Generator | None = None) -> torch.Tensor:
        """items int64 [B, L] (left-padded with N) -> hidden states float [B, L, d]."""
        B, L = items.shape
        valid = items < self.n_items
        x = table[items] + self.pos.weight[self.max_len - L:][None, :, :]
        x = dropout(x * valid[..., None], p, gen)
        causal = torch.ones(L, L, dtype=torch.bool, device=items.device).tril()
        mask = causal[None, :, :] & valid[:, None, :]
        mask = (mask | torch.eye(L, dtype=torch.bool, device=items.device)[None])[:, None]  # [B, 1, L, L]
        for block in self.blocks:
            x = block(x, mask, p, gen)
        return self.ln_f(x)
