"""Helpers for the LLM tests: a tiny causal LM saved to disk, a small warehouse, a stand-in text encoder."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from genre_core.config import GenreConfig
from genre_core.warehouse import connect

SHARED_DATA = Path(os.environ.get("GENRE_DATA_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data")

WORDS = """title category text drama comedy action thriller romance space war love story hero city night
the a of and in on with about film music dark light ship robot detective family school friends keywords
description recently liked interactions total categories only so far touched none yet you write short
catalogue descriptions reply exactly two lines five comma separated one sentence item tastes genres topics
moods they enjoy do not list titles again guess new user likely very little information - : , . ( )""".split()
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tiny_lm(folder: Path, chat_template: bool = True, seed: int = 0) -> Path:
    """A 2-layer Llama with a word-level tokenizer, saved with save_pretrained (offline, < 1 s)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + WORDS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>", additional_special_tokens=specials[4:])
    if chat_template:
        tok.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=2, eos_token_id=3, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # eos/pad/unk logits are exactly 0 while some word's is > 0: answers run full length
        model.lm_head.weight[[0, 1, 3]] = 0.0
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def hashing_encoder(cfg: GenreConfig, texts: list[str]) -> tuple[np.ndarray, str]:
    """Deterministic stand-in for the features text encoder: bag of hashed words, L2-normalised, d=16."""
    out = np.zeros((len(texts), 16), dtype=np.float32)
    for i, text in enumerate(texts):
        for w in text.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 16] += 1.0
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    return out, "hashing-16"


ITEMS = [
    ("1", "Space Robot", "A robot on a space ship.", "Action|Sci-Fi"),
    ("2", "Love in the City", "Two friends fall in love.", "Romance|Comedy"),
    ("3", "Dark Night", "A detective in the dark city.", "Thriller"),
    ("4", "School Friends", "Friends at school.", "Comedy|Drama"),
    ("5", None, None, "Drama"),  # nothing to enrich
]
# user u1: 6 ratings (profile); u2: 2 (cold start); u3: none (no prompt)
RATINGS = [("u1", "1", 5), ("u1", "2", 4), ("u1", "3", 2), ("u1", "4", 5), ("u1", "5", 4), ("u1", "1", 3),
           ("u2", "3", 5), ("u2", "4", 1)]


def fill_warehouse(cfg: GenreConfig, items: list[tuple] = ITEMS, ratings: list[tuple] = RATINGS) -> None:
    with connect(cfg) as con:
        con.executemany("INSERT INTO items (item_id, title, text, category) VALUES (?, ?, ?, ?)", items)
        con.executemany("INSERT INTO users (user_id) VALUES (?)", [("u1",), ("u2",), ("u3",)])
        if not ratings:
            return
        con.executemany(
            "INSERT INTO interactions (event_key, user_id, item_id, event_type, value, ts, batch_id) "
            "VALUES (?, ?, ?, 'rating', ?, TIMESTAMP '2020-01-01' + to_seconds(?), 'test')",
            [(f"e{i}", u, it, v, i) for i, (u, it, v) in enumerate(ratings)])
