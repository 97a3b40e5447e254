"""The cold-user generator (GENRE's third role): the LLM imagines items a cold user would like next.

Cold users are those with fewer than ``llm.cold_start_threshold`` events in the *training* part of the configured
split (``train.split`` with ``train.seed``, the very split the train stage makes), so the generator never sees an
event that the evaluation holds out; on the MovieLens 100K split that is the cold-user slice (3 training events
each) plus any user who has little data anyway. The prompt shows their training items (liked first).

The answer is parsed into up to ``llm.cold_gen_items`` one-line item descriptions; each is embedded with the
features text encoder (``features.text``) and their L2-normalised mean is stored as the user modality
``cold_gen`` in ``user_features``. The hybrid adds it to the user's history pooling like the content of one more
(id-less) item (``train.hybrid.use_cold_gen``).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from genre_core.config import GenreConfig
from genre_core.llm.embed import Encoder, features_encoder
from genre_core.llm.prompts import Job, _unique, make_job, top_categories
from genre_core.llm.store import stored_hashes, write_vectors
from genre_core.models.data import COLD_GEN_MODALITY
from genre_core.warehouse import connect

ROLE = "cold_gen"
_BULLET = re.compile(r"^\s*(?:[-*\u2022>#]+|\(?\d{1,2}[.):]|\*\*)\s*")
_LABEL = re.compile(r"^(?:item|title|description|keywords?|recommendation)\s*\d*\s*:\s*", re.IGNORECASE)


def parse_generated_items(output: str, k: int) -> list[str]:
    """Up to ``k`` item descriptions from a generator answer: one per non-empty line, bullets, numbering, bold
    markers and leading labels removed, duplicates dropped, each at most 300 characters. Raises ValueError when
    none is left."""
    items: list[str] = []
    for line in output.splitlines():
        text = _LABEL.sub("", _BULLET.sub("", line)).replace("**", "").strip(" \t-:\"'")
        text = " ".join(text.split())[:300]
        if len(text) >= 3 and text.lower() not in {t.lower() for t in items}:
            items.append(text)
    if not items:
        raise ValueError("no item description in the answer")
    return items[:k]


def _liked_pairs(interactions: pl.DataFrame, rules: dict[str, float]) -> set[tuple[str, str]]:
    """(user_id, item_id) pairs with an event that counts as liked (``llm.history_min_value``: event type ->
    minimum value), as the profilers define it."""
    if not rules:
        return set()
    rule = pl.DataFrame({"event_type": list(rules), "min_value": list(rules.values())},
                        schema={"event_type": pl.String, "min_value": pl.Float64})
    liked = interactions.join(rule, on="event_type").filter(pl.col("value") >= pl.col("min_value"))
    return set(zip(liked["user_id"].cast(pl.String).to_list(), liked["item_id"].cast(pl.String).to_list()))


def training_contexts(cfg: GenreConfig, split=None) -> list[tuple[str, int, list[str], list[str]]]:  # noqa: ANN001
    """(user_id, training events, titles of training items most recent first (liked ones first), their categories)
    for every user with 1 .. ``llm.cold_start_threshold - 1`` training events in the configured split
    (``split``: a ``training_split`` result already computed for ``cfg``)."""
    from genre_core.llm.training_events import training_split  # noqa: PLC0415 - numpy work, only when it runs

    frames, data, _, train = split if split is not None else training_split(cfg)
    counts = np.bincount(train.user, minlength=data.idmap.n_users)
    cold = np.flatnonzero((counts >= 1) & (counts < cfg.llm.cold_start_threshold))
    if cold.size == 0:
        return []
    with connect(cfg, read_only=True) as con:
        meta = {r[0]: (r[1], r[2]) for r in con.execute("SELECT item_id, title, category FROM items").fetchall()}
    liked_pairs = _liked_pairs(frames.interactions, cfg.llm.history_min_value)
    out = []
    order = np.lexsort((-train.ts, train.user))  # per user, most recent first
    starts = np.searchsorted(train.user[order], cold)
    for u, start in zip(cold, starts):
        rows = order[start:start + counts[u]]
        ids = [data.idmap.items[i] for i in train.item[rows]]
        liked = [(data.idmap.users[u], i) in liked_pairs for i in ids]
        ranked = [i for i, ok in zip(ids, liked) if ok] + [i for i, ok in zip(ids, liked) if not ok]
        titles = [meta.get(i, (None, None))[0] for i in ranked]
        out.append((data.idmap.users[u], int(counts[u]), titles, [meta.get(i, (None, None))[1] for i in ids]))
    return out


def cold_gen_jobs(cfg: GenreConfig, split=None) -> list[Job]:  # noqa: ANN001 - training_split's tuple
    """One ``cold_gen`` job per cold user (see ``training_contexts``) that has a titled item or a category."""
    jobs = []
    for user_id, n, titles, categories in training_contexts(cfg, split):
        shown = _unique(titles, cfg.llm.history_len)
        cats = top_categories(categories, cfg.llm.max_categories)
        if not shown and not cats:
            continue
        values = {"titles": "\n".join(f"- {t}" for t in shown) or "- (untitled items)",
                  "categories": ", ".join(cats) or "unknown", "n_interactions": str(n),
                  "n_items": str(cfg.llm.cold_gen_items)}
        jobs.append(make_job(cfg.llm, ROLE, user_id, values))
    return jobs


def publish_cold_gen(cfg: GenreConfig, jobs: Sequence[Job], outputs: dict[str, str],
                     encoder: Encoder | None = None) -> dict[str, int]:
    """Embed the parsed answers of ``jobs`` (``outputs``: ``{prompt_hash: text}``, ok ones) and store each user's
    mean vector (float32 [d], unit norm) as ``user_features.cold_gen``; only new or changed texts are embedded.

    Users that are no longer cold (no ``cold_gen`` job now) lose their stored vector.
    Returns {available, embedded, unchanged, unparseable, removed}."""
    enc = encoder or features_encoder()
    texts: dict[str, list[str]] = {}
    unparseable = 0
    for job in jobs:
        if job.role != ROLE or (out := outputs.get(job.request.key)) is None:
            continue
        try:
            texts[job.subject_id] = parse_generated_items(out, cfg.llm.cold_gen_items)
        except ValueError:
            unparseable += 1
    key = f"{cfg.features.text.model}|{cfg.features.text.max_length}\n"
    hashes = {u: hashlib.sha256((key + "\n".join(t)).encode("utf-8")).hexdigest() for u, t in texts.items()}
    cold = sorted({job.subject_id for job in jobs if job.role == ROLE})
    with connect(cfg) as con:
        have = stored_hashes(con, "user_features", COLD_GEN_MODALITY)
        removed = remove_vectors(con, COLD_GEN_MODALITY, sorted(set(have) - set(cold)))
    todo = [u for u in texts if have.get(u) != hashes[u]]
    if todo:
        flat = [t for u in todo for t in texts[u]]
        vectors, model_id = enc(cfg, flat)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(flat):
            raise RuntimeError(f"text encoder returned {vectors.shape[0]} vectors for {len(flat)} texts")
        means, pos = [], 0
        for u in todo:
            mean = vectors[pos:pos + len(texts[u])].mean(axis=0)
            means.append(mean / max(float(np.linalg.norm(mean)), 1e-8))
            pos += len(texts[u])
        with connect(cfg) as con:
            write_vectors(con, "user_features", COLD_GEN_MODALITY, model_id, todo, [hashes[u] for u in todo],
                          np.stack(means).astype(np.float32))
    return {"available": len(texts), "embedded": len(todo), "unchanged": len(texts) - len(todo),
            "unparseable": unparseable, "removed": removed}


def remove_vectors(con: duckdb.DuckDBPyConnection, modality: str, user_ids: list[str]) -> int:
    """Delete the ``modality`` vectors of ``user_ids`` from ``user_features``; returns how many."""
    if not user_ids:
        return 0
    con.register("_cg_gone", pa.table({"k": pa.array(user_ids, pa.string())}))
    try:
        con.execute("DELETE FROM user_features WHERE modality = ? AND user_id IN (SELECT k FROM _cg_gone)", [modality])
    finally:
        con.unregister("_cg_gone")
    return len(user_ids)
