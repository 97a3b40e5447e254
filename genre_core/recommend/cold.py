"""Cold-start scores: popularity from warehouse interactions, or a content profile from item content vectors."""
from __future__ import annotations

import numpy as np
import polars as pl

from genre_core.recommend.data import WarehouseData, content_matrix, index_of


def popularity_scores(data: WarehouseData, item_vocab: list[str]) -> np.ndarray:
    """float32 ``[len(item_vocab)]``: share of warehouse users with a positive interaction with each item (0..1)."""
    counts = (
        data.interactions.filter(pl.col("positive"))
        .group_by("item_id")
        .agg(pl.len().alias("n"))
    )
    pos = index_of(counts["item_id"], item_vocab)
    out = np.zeros(len(item_vocab), dtype=np.float32)
    n = counts["n"].to_numpy()
    out[pos[pos >= 0]] = n[pos >= 0]
    return out / max(data.users.height, 1)


def content_profiles(
    data: WarehouseData, user_rows: np.ndarray, content: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Content profiles of the given users (rows of ``data.users``): the L2-normalised mean of the normalised
    content vectors of their positive interactions (any item with a vector, known to the model or not).

    Returns float32 ``[len(user_rows), d]`` profiles and a bool ``[len(user_rows)]`` mask of who has one.
    """
    item_ids = content["item_id"].to_list()
    vectors, has_vec = content_matrix(content, item_ids)
    n = len(user_rows)
    profiles = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    if n == 0 or not has_vec.any():
        return profiles, np.zeros(n, dtype=bool)
    wanted = data.users["user_id"].gather(user_rows)
    inter = data.interactions.filter(pl.col("positive") & pl.col("user_id").is_in(wanted.implode()))
    rows = index_of(inter["user_id"], wanted.to_list())
    cols = index_of(inter["item_id"], item_ids)
    keep = cols >= 0
    rows, cols = rows[keep], cols[keep]
    np.add.at(profiles, rows, vectors[cols])
    counts = np.bincount(rows, minlength=n)
    norms = np.linalg.norm(profiles, axis=1, keepdims=True)
    has = (counts > 0) & (norms[:, 0] > 0)
    profiles[has] /= norms[has]
    return profiles, has
