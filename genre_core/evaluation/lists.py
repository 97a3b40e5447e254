"""Inputs of the list metrics (diversity, novelty) built from the training data of one split."""
from __future__ import annotations

import numpy as np

from genre_core.models.content import content_item_matrix
from genre_core.models.data import LLM_ITEM_MODALITY, Interactions, TrainData


def list_inputs(data: TrainData, train: Interactions) -> tuple[np.ndarray | None, np.ndarray]:
    """(content vectors float32 [n_items, d] or None, training popularity int64 [n_items]).

    Content vectors: every stored item modality but ``text_llm`` (``TrainData.modalities(None)``: plugin
    extractors' ones included), centred, L2-normalised and concatenated (``content_item_matrix``), the same
    vector space the content model uses; None when no such content is stored.
    Popularity: positive training events per item (cold items 0).
    """
    n = data.idmap.n_items
    pos = train.positives()
    popularity = np.bincount(pos.item, minlength=n).astype(np.int64)
    has_content = any(m != LLM_ITEM_MODALITY for m in data.item_features)
    vectors = content_item_matrix(data, data.modalities(None)) if has_content else None
    return vectors, popularity
