"""Inputs of the list metrics (diversity, novelty) built from the training data of one split."""
from __future__ import annotations

import numpy as np

from genre_core.models.content import content_item_matrix
from genre_core.models.data import ITEM_MODALITIES, Interactions, TrainData


def list_inputs(data: TrainData, train: Interactions) -> tuple[np.ndarray | None, np.ndarray]:
    """(content vectors float32 [n_items, d] or None, training popularity int64 [n_items]).

    Content vectors: every stored modality among text and image, centred, L2-normalised and concatenated
    (``content_item_matrix``), the same space the content model scores in; None when no content is stored.
    Popularity: positive training events per item (cold items 0).
    """
    n = data.idmap.n_items
    pos = train.positives()
    popularity = np.bincount(pos.item, minlength=n).astype(np.int64)
    modalities = [m for m in ITEM_MODALITIES if m in data.item_features]
    vectors = content_item_matrix(data, modalities) if modalities else None
    return vectors, popularity
