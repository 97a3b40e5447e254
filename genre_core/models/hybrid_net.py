"""The hybrid network: items = id embedding fused with content towers; users = pooled history + id + profile.

Shapes: N items (+1 padding row at index N), U users, d = ``dim``, B a batch of users, H history slots.

* content c_i = sum over modalities of Linear_m(x_i^m) (x pre-normalised; zero where a modality is missing);
* item embedding (two tables: "out" for targets, "in" for history items), by ``fusion``:
  sum: e = c + h_i * id_i; concat: e = W [h_i * id_i ; c]; gated: e = c + h_i * sigmoid(W c) * id_i,
  where h_i = 1 when the item has an id embedding (seen in training, not dropped) and 0 for cold items, so a
  cold item is scored from its content alone; bias b_i = h_i * b^id_i + w . c_i;
* user u = pool(history in-embeddings with recency bias) + user id embedding + Linear(profile vector);
  with ``gen_modality`` (cold-user generator), users that have generated-item vectors g_u (in the space of that
  item modality) add w * e(g_u) to the pooled history, where e(g) is the in-embedding a cold item with content
  g would get (its tower, fused with no id) and w a learned scalar (starts at 0: the plain hybrid);
  pool = recency-weighted mean, or attention whose query is that mean and whose logits carry log recency;
* ranking score s(u, i) = <u, e_i> + b_i; rating head r(u, i) = mu + b^r_u + b^r_i + <A u, e_i>.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class HybridNet(nn.Module):
    def __init__(
        self,
        n_users: int,
        n_items: int,
        item_dims: dict[str, int],
        user_dims: dict[str, int],
        dim: int,
        fusion: str,
        history: str,
        user_embedding: bool,
        max_history: int = 400,
        half_life: float = 40.0,
        learn_recency: bool = True,
        gen_modality: str | None = None,
    ) -> None:
        super().__init__()
        if fusion not in ("sum", "concat", "gated"):
            raise ValueError(f"unknown fusion {fusion!r}; valid: sum, concat, gated")
        if history not in ("mean", "attention"):
            raise ValueError(f"unknown history pooling {history!r}; valid: mean, attention")
        self.n_items, self.dim, self.fusion, self.history = n_items, dim, fusion, history
        self.half_life = half_life
        # recency of a history event as a bias on its pooling logit, per age bucket (0..7, then powers of 2)
        self.n_buckets = 8 + max(0, math.ceil(math.log2(max(max_history, 8) / 8))) + 1
        self.age_bias = nn.Parameter(torch.zeros(self.n_buckets), requires_grad=learn_recency)
        self.out_id = nn.Embedding(n_items + 1, dim)
        self.in_id = nn.Embedding(n_items + 1, dim)
        self.id_bias = nn.Embedding(n_items + 1, 1)
        self.towers = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in item_dims.items()})
        self.content_bias = nn.Linear(dim, 1)
        if fusion == "concat":
            self.fuse_out, self.fuse_in = nn.Linear(2 * dim, dim), nn.Linear(2 * dim, dim)
        elif fusion == "gated":
            self.fuse_out, self.fuse_in = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.user_id = nn.Embedding(n_users, dim) if user_embedding else None
        self.user_towers = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in user_dims.items()})
        if history == "attention":
            self.att_q, self.att_k = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.rating_proj = nn.Linear(dim, dim, bias=False)
        self.user_rbias = nn.Embedding(n_users, 1)
        self.item_rbias = nn.Embedding(n_items + 1, 1)
        self.register_buffer("rating_mean", torch.zeros(()))
        for m, d in item_dims.items():
            self.register_buffer(f"feat_{m}", torch.zeros(n_items + 1, d))
            self.register_buffer(f"mask_{m}", torch.zeros(n_items + 1))
        for m, d in user_dims.items():
            self.register_buffer(f"ufeat_{m}", torch.zeros(n_users, d))
        self.register_buffer("has_id", torch.zeros(n_items + 1))
        if gen_modality is not None and gen_modality not in item_dims:
            raise ValueError(f"gen_modality {gen_modality!r} is not an item modality {sorted(item_dims)}")
        self.gen_modality = gen_modality
        if gen_modality is not None:
            self.gen_weight = nn.Parameter(torch.zeros(()))
            self.register_buffer("gen_vec", torch.zeros(n_users, item_dims[gen_modality]))
            self.register_buffer("gen_mask", torch.zeros(n_users))

    def reset_parameters(self, gen: torch.Generator) -> None:
        """Seeded initialisation: embeddings N(0, 0.05), matrices Xavier, biases and bias tables zero."""
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name == "gen_weight":
                    p.zero_()
                elif name.endswith("bias") or "bias." in name:
                    p.zero_()
                elif isinstance(self.get_submodule(name.rsplit(".", 1)[0]), nn.Embedding):
                    p.normal_(0.0, 0.05, generator=gen)
                else:
                    nn.init.xavier_uniform_(p, generator=gen)
        with torch.no_grad():  # start from exponential decay with the configured half-life
            centers = torch.tensor([float(b) if b < 8 else 8 * 2 ** (b - 8) * 1.5 for b in range(self.n_buckets)])
            self.age_bias.copy_(-centers * math.log(2.0) / self.half_life)

    @staticmethod
    def age_bucket(age: torch.Tensor) -> torch.Tensor:
        """int [..]: 0..7 for ages 0..7, then 8 + floor(log2(age / 8))."""
        big = 8 + torch.floor(torch.log2(age.clamp_min(8).float() / 8)).long()
        return torch.where(age < 8, age, big)

    def content(self) -> torch.Tensor:
        """float [N + 1, d]: content embedding of every item (padding row zero)."""
        c = torch.zeros(self.n_items + 1, self.dim, device=self.has_id.device)
        for m, tower in self.towers.items():
            c = c + tower(getattr(self, f"feat_{m}")) * getattr(self, f"mask_{m}")[:, None]
        return c

    def _fuse(self, ids: torch.Tensor, c: torch.Tensor, h: torch.Tensor, side: str) -> torch.Tensor:
        idh = ids * h[:, None]
        if self.fusion == "sum":
            return c + idh
        fuse = self.fuse_out if side == "out" else self.fuse_in
        if self.fusion == "concat":
            return fuse(torch.cat([idh, c], dim=1))
        return c + torch.sigmoid(fuse(c)) * idh

    def item_tables(self, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(out [N + 1, d], in [N + 1, d], bias [N + 1]) with id mask ``h`` (default: ``has_id``)."""
        h = self.has_id if h is None else h
        c = self.content()
        out = self._fuse(self.out_id.weight, c, h, "out")
        inn = self._fuse(self.in_id.weight, c, h, "in")
        bias = self.id_bias.weight[:, 0] * h + self.content_bias(c)[:, 0]
        return out, inn, bias

    def user_vectors(
        self, users: torch.Tensor, hist: torch.Tensor, age: torch.Tensor, valid: torch.Tensor,
        in_table: torch.Tensor,
    ) -> torch.Tensor:
        """float [B, d]. hist int [B, H] item indices (padding N, distinct per row), age int [B, H] events
        since (0 = most recent), valid bool [B, H]; in_table [N + 1, d]."""
        # pooling as dense [B, N + 1] weight rows times the item table: no [B, H, d] tensor is built
        bucket = self.age_bucket(age).clamp_max(self.n_buckets - 1)
        logw = torch.where(valid, self.age_bias[bucket], torch.full_like(age, -1e9, dtype=in_table.dtype))
        any_valid = valid.any(dim=1, keepdim=True)
        w = torch.softmax(logw, dim=1) * any_valid
        rows = torch.zeros(hist.shape[0], in_table.shape[0], device=w.device, dtype=w.dtype)
        pooled = rows.scatter_add(1, hist, w) @ in_table
        if self.history == "attention":
            # <W_q p, W_k h_j> = <W_k^T W_q p, h_j>, scored against every item, read at the history items
            q = self.att_q(pooled) @ self.att_k.weight  # [B, d]
            att = (q @ in_table.T).gather(1, hist) / math.sqrt(self.dim) + logw
            a = torch.softmax(att, dim=1) * any_valid
            pooled = rows.scatter_add(1, hist, a) @ in_table
        if self.gen_modality is not None:
            m = self.gen_mask[users][:, None]
            c = self.towers[self.gen_modality](self.gen_vec[users])
            g = self._fuse(torch.zeros_like(c), c, torch.zeros_like(m[:, 0]), "in") * m
            pooled = pooled + self.gen_weight * g.to(pooled.dtype)
        u = pooled
        if self.user_id is not None:
            u = u + self.user_id(users)
        for m, tower in self.user_towers.items():
            u = u + tower(getattr(self, f"ufeat_{m}")[users])
        return u

    def rating(self, u: torch.Tensor, users: torch.Tensor, items: torch.Tensor, out_table: torch.Tensor) -> torch.Tensor:
        """float [B, T]: predicted values of items int [B, T] for user vectors u [B, d]."""
        dot = torch.bmm(out_table[items], self.rating_proj(u)[:, :, None])[:, :, 0]
        return self.rating_mean + self.user_rbias(users) + self.item_rbias(items)[..., 0] + dot
