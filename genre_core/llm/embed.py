"""Embed the LLM outputs so that the hybrid model can use them.

- enriched items -> ``item_features`` modality ``text_llm`` (text = ``llm.item_embed_template`` over the parsed
  description and keywords);
- user profiles (``profile`` and ``cold_start`` roles) -> ``user_features`` modality ``profile``;
- the enriched item text (description + keywords) -> ``items.attributes.enriched`` (``llm.item_attribute``),
  which the features stage offers as the ``{enriched}`` template field.

Only subjects whose *current* prompt has an ``ok`` output are embedded. Incremental: the content hash covers the
text encoder settings and the text, so a rerun embeds only new or changed texts; a subject whose new output is
not generated yet (budget) keeps its previous vector.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from genre_core.config import GenreConfig
from genre_core.llm.parse import parse_enrichment, tidy_description
from genre_core.llm.prompts import Job
from genre_core.llm.store import stored_hashes, write_item_attribute, write_vectors
from genre_core.warehouse import connect

ITEM_MODALITY = "text_llm"
USER_MODALITY = "profile"
Encoder = Callable[[GenreConfig, list[str]], tuple[np.ndarray, str]]


def features_encoder(progress: bool = False) -> Encoder:
    """The features stage's text encoder (``features.text``): ``encode_texts`` with or without a progress bar."""

    def encode(cfg: GenreConfig, texts: list[str]) -> tuple[np.ndarray, str]:
        from genre_core.features.text import encode_texts  # noqa: PLC0415 - loads torch + the text model

        return encode_texts(cfg, texts, progress=progress)

    return encode


def item_texts(cfg: GenreConfig, job: Job, output: str) -> tuple[str, str]:
    """(text embedded as ``text_llm``, text stored in ``items.attributes``) for one enriched item.
    Raises ValueError for an unusable output."""
    parsed = parse_enrichment(output)
    keywords = ", ".join(parsed.keywords)
    embedded = cfg.llm.item_embed_template.format(
        title=job.fields.get("title", ""), category=job.fields.get("category", ""),
        description=parsed.description, keywords=keywords)
    return embedded, f"{parsed.description} Keywords: {keywords}." if keywords else parsed.description


def content_hash(cfg: GenreConfig, text: str) -> str:
    """sha256 of the text encoder settings and ``text``: a new encoder or a new text means a new vector."""
    key = f"{cfg.features.text.model}|{cfg.features.text.max_length}\n{text}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _embed_one(cfg: GenreConfig, table: str, modality: str, texts: dict[str, str], encoder: Encoder) -> dict[str, int]:
    with connect(cfg) as con:
        have = stored_hashes(con, table, modality)
    hashes = {sid: content_hash(cfg, t) for sid, t in texts.items()}
    todo = [sid for sid in texts if have.get(sid) != hashes[sid]]
    if todo:
        vectors, model_id = encoder(cfg, [texts[s] for s in todo])
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(todo):
            raise RuntimeError(f"text encoder returned {vectors.shape[0]} vectors for {len(todo)} texts")
        with connect(cfg) as con:
            write_vectors(con, table, modality, model_id, todo, [hashes[s] for s in todo], vectors)
    return {"available": len(texts), "embedded": len(todo), "unchanged": len(texts) - len(todo)}


def publish_outputs(cfg: GenreConfig, jobs: Sequence[Job], outputs: dict[str, str],
                    encoder: Encoder | None = None, progress: bool = False) -> dict[str, dict[str, int]]:
    """Publish the ok ``outputs`` (``{prompt_hash: text}``) of ``jobs`` (all subjects, shared prompts included):
    the enriched item text into ``items.attributes[llm.item_attribute]`` (when set) and, when ``llm.embed``,
    vectors into ``item_features``/``user_features``.

    ``encoder(cfg, texts) -> (float32 [n, d] L2-normalised, model_id)``; default: the features stage's
    ``encode_texts``. Returns counts per target (available, embedded / updated, unchanged, unparseable).
    """
    enc = encoder or features_encoder(progress)
    items: dict[str, str] = {}
    attrs: dict[str, str] = {}
    users: dict[str, str] = {}
    unparseable = 0
    for job in jobs:
        out = outputs.get(job.request.key)
        if out is None:
            continue
        if job.role == "enrich":
            try:
                items[job.subject_id], attrs[job.subject_id] = item_texts(cfg, job, out)
            except ValueError:
                unparseable += 1
        else:
            users[job.subject_id] = tidy_description(out)
    summary: dict[str, dict[str, int]] = {}
    key = cfg.llm.item_attribute
    if key and attrs:
        with connect(cfg) as con:
            summary[f"items.attributes.{key}"] = {"available": len(attrs),
                                                  "updated": write_item_attribute(con, key, attrs)}
    if not cfg.llm.embed:
        return summary
    if items:
        summary[f"item_features.{ITEM_MODALITY}"] = _embed_one(cfg, "item_features", ITEM_MODALITY, items, enc)
        summary[f"item_features.{ITEM_MODALITY}"]["unparseable"] = unparseable
    if users:
        summary[f"user_features.{USER_MODALITY}"] = _embed_one(cfg, "user_features", USER_MODALITY, users, enc)
    return summary
