"""A small batched generation engine for Llama-style decoders on CPU, in plain torch.

What it does that ``transformers.generate`` does not, for the enrichment job (many prompts that share a long
system prompt, short outputs):

- **Shared prefix, computed once.** The longest token prefix common to all prompts of a call (the system prompt
  and the chat template's head: 73 of ~186 tokens for the enrich role) is run once and its keys/values are copied
  into every row of the cache; each prompt only runs its own suffix.
- **No padding waste.** Suffixes are prefilled in length-sorted groups (right padding inside a group only); rows
  then decode side by side at their own positions.
- **A preallocated key/value cache** written in place (``transformers``' dynamic cache concatenates the whole
  cache at every step), attention masked per row by position.
- **Continuous batching.** A row that finishes (end token or its length limit) hands its slot to the next waiting
  prompt, so a batch is not held up by its longest answer; free slots are refilled in groups.
- **Mixed precision.** ``dtype=bfloat16`` keeps the weights in bfloat16 (matrix products on AMX / AVX512-BF16)
  while the residual stream, norms, rotary embedding and softmax stay float32, which keeps greedy answers closer
  to a float32 run than an all-bfloat16 model. ``dtype=float32`` reproduces ``transformers`` greedy tokens.

Supported: ``LlamaForCausalLM`` and same-shaped decoders (``llama``, ``mistral`` without sliding window, ``qwen2``
with its q/k/v biases), default or precomputed rotary frequencies. Anything else raises ``ValueError`` naming the
model type, and the backend says to use ``llm.backend: transformers`` for it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED_TYPES = ("llama", "mistral", "qwen2")


@dataclass
class _Layer:
    ln1: torch.Tensor
    ln2: torch.Tensor
    wqkv: torch.Tensor
    bqkv: torch.Tensor | None
    wo: torch.Tensor
    wgu: torch.Tensor
    wdown: torch.Tensor


def check_supported(config: Any) -> None:
    """Raise ``ValueError`` (naming what) when ``config`` is not a decoder this engine runs exactly."""
    mtype = getattr(config, "model_type", None)
    if mtype not in SUPPORTED_TYPES:
        raise ValueError(f"model type {mtype!r} is not supported by the llama engine (supported: "
                         f"{', '.join(SUPPORTED_TYPES)})")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {config.hidden_act!r} is not supported by the llama engine (silu only)")
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", mtype == "mistral"):
        raise ValueError("sliding-window attention is not supported by the llama engine")
    if getattr(config, "mlp_bias", False):
        raise ValueError("MLP biases are not supported by the llama engine")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in ("default", "linear", "llama3", "yarn", "dynamic"):
        raise ValueError(f"rope type {rope_type!r} is not supported by the llama engine")
    if mtype == "llama" and getattr(config, "attention_bias", False):
        raise ValueError("attention biases on a llama model are not supported by the llama engine")


class LlamaEngine:
    """Greedy (or seeded sampled) batched generation for a ``transformers`` Llama-style causal LM.

    Built from a loaded model (any dtype; its weights are copied at ``dtype``); the model object can be dropped
    afterwards. ``generate`` takes token id lists and returns the new token ids of each, stopping at ``stop_ids``.
    """

    def __init__(self, model: Any, dtype: torch.dtype = torch.float32) -> None:
        cfg = model.config
        check_supported(cfg)
        self.dtype = dtype
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = float(cfg.rms_norm_eps)
        self.max_positions = getattr(cfg, "max_position_embeddings", None)
        base = model.model
        rot = base.rotary_emb
        self.inv_freq = rot.inv_freq.detach().float().clone()
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))
        self.embed = base.embed_tokens.weight.detach().to(dtype).contiguous()
        self.norm = base.norm.weight.detach().float().clone()
        head = model.get_output_embeddings().weight.detach()
        tied = head.data_ptr() == base.embed_tokens.weight.data_ptr()
        self.lm_head = self.embed if tied else head.to(dtype).contiguous()
        self.layers: list[_Layer] = []
        for layer in base.layers:
            att, mlp = layer.self_attn, layer.mlp
            w = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]).detach().to(dtype)
            b = None
            if att.q_proj.bias is not None:
                b = torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]).detach().float()
            self.layers.append(_Layer(
                ln1=layer.input_layernorm.weight.detach().float().clone(),
                ln2=layer.post_attention_layernorm.weight.detach().float().clone(),
                wqkv=w.contiguous(), bqkv=b, wo=att.o_proj.weight.detach().to(dtype).contiguous(),
                wgu=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().to(dtype).contiguous(),
                wdown=mlp.down_proj.weight.detach().to(dtype).contiguous()))
        self.scale = self.head_dim ** -0.5

    # ---- building blocks -------------------------------------------------------------------------------------
    def _rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def _rope(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = pos.float()[..., None] * self.inv_freq  # [..., d/2]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos() * self.rope_scale, emb.sin() * self.rope_scale

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    def new_cache(self, rows: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        shape = (rows, self.n_kv, length, self.head_dim)
        return [(torch.zeros(shape, dtype=self.dtype), torch.zeros(shape, dtype=self.dtype)) for _ in self.layers]

    def forward(self, ids: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor,
                cache: list[tuple[torch.Tensor, torch.Tensor]], last: torch.Tensor,
                step: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Run ``ids`` [R, S] at positions ``pos`` [R, S] for cache rows ``rows`` [R] and return float32 logits of
        the token at index ``last`` [R] of each row.

        Prefill (``step`` None): keys/values go to the cache column equal to their position, and a token at
        position p attends to columns 0..p. Decoding (``step`` = (column, bias)): one token for every cache row,
        written to the same ``column`` of all rows (a plain slice, no scattered writes), attending to the columns
        where ``bias`` [R, 1, 1, T] is 0 (-inf elsewhere)."""
        R, S = ids.shape
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        G = H // KV
        x = F.embedding(ids, self.embed).float()  # residual stream in float32
        cos, sin = self._rope(pos)  # [R, S, D]
        cos, sin = cos[:, None], sin[:, None]  # [R, 1, S, D]
        T = cache[0][0].shape[2]
        whole = R == cache[0][0].shape[0] and bool((rows == torch.arange(R)).all())
        if step is not None:
            if S != 1 or not whole:
                raise ValueError("a decoding step runs one token for every cache row")
            col, bias = step
        else:
            # where each token's key/value goes in the flattened cache [rows * KV * T, D]: its position's column
            slot = ((rows[:, None, None] * KV + torch.arange(KV)[None, None, :]) * T + pos[:, :, None]).reshape(-1)
            span = int(pos.max()) + 1  # the fused attention kernel runs over the columns up to the group's last
            visible = torch.arange(span)[None, None, None, :] <= pos[:, None, :, None]
        for layer, (ck, cv) in zip(self.layers, cache):
            h = self._rms(x, layer.ln1).to(self.dtype)
            qkv = F.linear(h, layer.wqkv)
            if layer.bqkv is not None:
                qkv = qkv + layer.bqkv.to(qkv.dtype)
            q, k, v = qkv.split([H * D, KV * D, KV * D], dim=-1)
            q = self._rotate(q.float().view(R, S, H, D).transpose(1, 2), cos, sin)
            k = self._rotate(k.float().view(R, S, KV, D).transpose(1, 2), cos, sin).to(self.dtype)
            if step is not None:
                ck[:, :, col] = k[:, :, 0]
                cv[:, :, col] = v.view(R, KV, D)
                # attention over the whole preallocated length: a slice would not be contiguous, and the batched
                # products would copy the cache at every layer. Grouped-query: G query heads share a key/value head
                qg = q.reshape(R, KV, G, D).to(self.dtype)
                scores = torch.matmul(qg, ck.transpose(-1, -2)).float().mul_(self.scale).add_(bias)  # [R,KV,G,T]
                probs = torch.softmax(scores, dim=-1).to(self.dtype)
                att = torch.matmul(probs, cv).reshape(R, 1, H * D)  # [R, KV, G, D] -> heads kv * G + g
            else:
                ck.view(-1, D).index_copy_(0, slot, k.transpose(1, 2).reshape(-1, D))
                cv.view(-1, D).index_copy_(0, slot, v.reshape(-1, D))
                keys = ck[:, :, :span] if whole else ck[:, :, :span].index_select(0, rows)
                vals = cv[:, :, :span] if whole else cv[:, :, :span].index_select(0, rows)
                att = F.scaled_dot_product_attention(q.to(self.dtype), keys, vals, attn_mask=visible,
                                                     enable_gqa=G > 1)
                att = att.transpose(1, 2).reshape(R, S, H * D)
            x = x + F.linear(att, layer.wo).float()
            h = self._rms(x, layer.ln2).to(self.dtype)
            gate, up = F.linear(h, layer.wgu).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.wdown).float()
        x = x[torch.arange(R), last]
        return F.linear(self._rms(x, self.norm).to(self.lm_head.dtype), self.lm_head).float()

    # ---- generation ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Sequence[int]], max_new: Sequence[int], stop_ids: set[int], *,
                 batch_size: int = 64, refill: int | None = None, prefill_tokens: int = 4096,
                 temperature: float = 0.0, top_k: int = 50, seed: int = 0,
                 on_done: Callable[[int], None] | None = None) -> list[list[int]]:
        """New token ids for each prompt (its stop token excluded), at most ``max_new[i]`` each.

        ``batch_size`` rows decode at once; a finished row's slot goes to the next prompt once ``refill`` slots
        (default: a quarter of the batch) are free or no row is left running. ``prefill_tokens`` bounds the tokens
        of one prefill group. ``temperature`` 0 = greedy; otherwise top-k sampling with a ``seed``ed generator.
        """
        n = len(prompts)
        if n == 0:
            return []
        if any(len(p) == 0 for p in prompts):
            raise ValueError("empty prompt")
        gen = torch.Generator().manual_seed(seed) if temperature > 0 else None
        prefix = _common_prefix(prompts)
        slots = min(batch_size, n)
        if batch_size < 1 or min(max_new) < 1:
            raise ValueError("batch_size and every max_new must be >= 1")
        longest = max(len(p) + m for p, m in zip(prompts, max_new))
        if self.max_positions is not None and longest > self.max_positions:
            raise ValueError(f"prompt + output of {longest} tokens exceeds the model's {self.max_positions} positions")
        # cache columns: [0, L0) prompts (the shared prefix, then each row's own suffix at its positions);
        # [L0, L0 + W) a ring of generated tokens, all rows writing column L0 + step % W at a decoding step. A row
        # that has fed c generated tokens sees the ring columns written in the last c + 1 steps (this one included).
        L0, W = max(len(p) for p in prompts), max(max_new)
        cache = self.new_cache(slots, L0 + W)
        if prefix:
            one = self.new_cache(1, prefix)
            p_ids = torch.tensor([list(prompts[0][:prefix])])
            self.forward(p_ids, torch.arange(prefix)[None], torch.tensor([0]), one, torch.tensor([prefix - 1]))
            for (ck, cv), (pk, pv) in zip(cache, one):
                ck[:, :, :prefix] = pk
                cv[:, :, :prefix] = pv
        out: list[list[int]] = [[] for _ in range(n)]
        queue = list(range(n))
        queue.sort(key=lambda i: -len(prompts[i]))  # longest first: later groups pad less
        queue.reverse()  # pop() from the end takes the longest
        owner = [-1] * slots  # prompt index in each slot, -1 = free
        cur = torch.zeros(slots, dtype=torch.long)  # position of the next token to write per slot
        plen = torch.ones(slots, dtype=torch.long)  # prompt length per slot
        fed = torch.zeros(slots, dtype=torch.long)  # generated tokens fed back per slot (its ring columns)
        step = 0
        nxt = torch.zeros(slots, dtype=torch.long)  # last produced token per slot
        refill = max(1, refill if refill is not None else slots // 4)

        def pick(logits: torch.Tensor) -> torch.Tensor:
            if gen is None:
                return logits.argmax(-1)
            vals, idx = logits.div(temperature).topk(min(top_k, logits.shape[-1]), dim=-1)
            return idx.gather(-1, torch.multinomial(torch.softmax(vals, -1), 1, generator=gen)).squeeze(-1)

        def finish(slot: int) -> None:
            i = owner[slot]
            owner[slot] = -1
            if on_done is not None:
                on_done(i)

        def accept(slot: int, tok: int) -> None:
            i = owner[slot]
            if tok in stop_ids:
                finish(slot)
                return
            out[i].append(tok)
            if len(out[i]) >= max_new[i]:
                finish(slot)

        def fill(free: list[int]) -> None:
            take = [(s, queue.pop()) for s in free[: len(queue)]]
            k = 0
            while k < len(take):  # groups of similar length (the queue is length-sorted) up to prefill_tokens
                width = len(prompts[take[k][1]]) - prefix
                g = max(1, min(len(take) - k, prefill_tokens // max(width, 1)))
                group = take[k:k + g]
                k += g
                S = max(len(prompts[i]) - prefix for _, i in group)
                ids = torch.zeros(len(group), S, dtype=torch.long)
                lens = []
                for r, (s, i) in enumerate(group):
                    suffix = list(prompts[i][prefix:])
                    ids[r, :len(suffix)] = torch.tensor(suffix)
                    lens.append(len(suffix))
                    owner[s] = i
                rows = torch.tensor([s for s, _ in group])
                pos = prefix + torch.arange(S)[None].expand(len(group), S)
                last = torch.tensor(lens) - 1
                toks = pick(self.forward(ids, pos, rows, cache, last))
                for r, (s, _) in enumerate(group):
                    cur[s] = plen[s] = prefix + lens[r]
                    fed[s] = 0
                    nxt[s] = toks[r]
                    accept(s, int(toks[r]))

        fill(list(range(slots)))
        while True:
            active = [s for s in range(slots) if owner[s] >= 0]
            free = [s for s in range(slots) if owner[s] < 0]
            if queue and free and (len(free) >= refill or not active):
                fill(free)
                continue
            if not active:
                break
            if len(active) <= slots // 2 and not queue and len(active) < cache[0][0].shape[0]:
                # few rows left and nothing to refill: compact the cache to the running rows
                keep = torch.tensor(active)
                cache = [(ck[keep], cv[keep]) for ck, cv in cache]
                cur, nxt, plen, fed = (t[keep].clone() for t in (cur, nxt, plen, fed))
                owner = [owner[s] for s in active]
                slots = len(active)
                continue
            # every slot decodes (a free one writes a ring column no later row reads): running a few idle rows
            # is cheaper than gathering the running rows' cache at every layer
            col = step % W
            ring = (col - torch.arange(W)) % W  # steps since each ring column was written
            visible = torch.cat([torch.arange(L0)[None, :] < plen[:, None], ring[None, :] <= fed[:, None]], dim=1)
            bias = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf"))[:, None, None, :]
            logits = self.forward(nxt[:, None], cur[:, None], torch.arange(slots), cache,
                                  torch.zeros(slots, dtype=torch.long), step=(L0 + col, bias))
            step += 1
            toks = pick(logits)
            for s in active:
                cur[s] += 1
                fed[s] += 1
                nxt[s] = toks[s]
                accept(s, int(toks[s]))
        return out


def _common_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own."""
    first = prompts[0]
    n = min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)
