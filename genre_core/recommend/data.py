"""What the recommend stage reads from the warehouse (one short read-only connection) and its index mapping."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from genre_core.config import GenreConfig
from genre_core.events import classify, resolve_rules
from genre_core.ranking import CSR
from genre_core.warehouse import connect


@dataclass(frozen=True)
class WarehouseData:
    """Warehouse inputs of one recommend run (polars frames, string ids as in the warehouse)."""

    users: pl.DataFrame  # user_id: every user in `users` or `interactions`, sorted
    interactions: pl.DataFrame  # user_id, item_id, positive (bool): one row per distinct (user, item)
    content: pl.DataFrame | None  # item_id, vector (list[f32]); for cold_start = "content" or diversity.weight > 0


def load_warehouse(cfg: GenreConfig) -> WarehouseData:
    """Read users, distinct (user, item) interactions and, when needed, content vectors; the connection is
    read-only and closed before returning, so the warehouse stays untouched by this stage.

    ``positive`` is true where some interaction of the pair is a positive under the ``events`` rules
    (``genre_core.events``; no rules: every interaction). Only positives count as "seen" and as "because"
    candidates; explicit negatives (e.g. MIND skips) and ignored events do neither.
    """
    rc = cfg.recommend

    def frame(sql: str, params: list | None = None) -> pl.DataFrame:
        out = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
        assert isinstance(out, pl.DataFrame)  # a Table always converts to a DataFrame
        return out

    with connect(cfg, read_only=True) as con:
        users = frame("SELECT user_id FROM users UNION SELECT user_id FROM interactions ORDER BY user_id")
        raw = frame("""SELECT user_id, item_id, event_type, value::DOUBLE AS value, is_history, count(*) AS n
                       FROM interactions GROUP BY ALL""")
        content = None
        if rc.cold_start == "content" or rc.diversity.weight > 0:
            content = frame(
                "SELECT item_id, dim, vector FROM item_features WHERE modality = ? ORDER BY item_id",
                [rc.content_modality],
            )
    positive, _, _ = classify(raw, resolve_rules(cfg))
    inter = (raw.select("user_id", "item_id").with_columns(positive=pl.Series(positive, dtype=pl.Boolean))
             .group_by("user_id", "item_id").agg(pl.col("positive").any()).sort("user_id", "item_id"))
    if content is not None:
        dims = content["dim"].unique().to_list()
        if len(dims) > 1:
            raise ValueError(
                f"item_features for modality {rc.content_modality!r} mix vector sizes {sorted(dims)}; "
                "re-run `genre features` so every item uses the same encoder"
            )
        content = content.select("item_id", "vector")
    return WarehouseData(users=users, interactions=inter, content=content)


def index_of(ids: pl.Series, vocabulary: list[str]) -> np.ndarray:
    """int64 position of each id in ``vocabulary``, -1 where absent (a join, not a Python loop)."""
    vocab = pl.DataFrame(
        {"id": pl.Series(vocabulary, dtype=pl.String), "pos": np.arange(len(vocabulary), dtype=np.int64)}
    )
    frame = pl.DataFrame({"id": ids.cast(pl.String)}).with_row_index("row")
    joined = frame.join(vocab, on="id", how="left").sort("row")
    return joined["pos"].fill_null(-1).to_numpy().astype(np.int64, copy=False)


def interactions_csr(
    data: WarehouseData, item_vocab: list[str], positive_only: bool = False
) -> tuple[CSR, np.ndarray]:
    """CSR over ``data.users`` rows of item indices into ``item_vocab`` (items outside it are dropped);
    ``positive_only``: only pairs with a positive interaction (what "seen" and "because" use).

    Returns the CSR and int64 ``[n_users]`` counts of ALL interactions per user (including unknown items).
    """
    users = data.users["user_id"]
    inter = data.interactions.filter(pl.col("positive")) if positive_only else data.interactions
    rows = index_of(inter["user_id"], users.to_list())
    if (rows < 0).any():
        raise ValueError("interactions reference a user_id missing from the user list (warehouse read race?)")
    cols = index_of(inter["item_id"], item_vocab)
    counts = np.bincount(rows, minlength=len(users)).astype(np.int64)
    known = cols >= 0
    return CSR.from_pairs(rows[known], cols[known], len(users)), counts


def content_matrix(content: pl.DataFrame, item_vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Content vectors aligned with ``item_vocab``: float32 ``[len(item_vocab), d]`` L2-normalised, zero rows where
    an item has none, and a bool ``[len(item_vocab)]`` mask of which items have one."""
    if content.height == 0:
        return np.zeros((len(item_vocab), 1), dtype=np.float32), np.zeros(len(item_vocab), dtype=bool)
    vectors = np.asarray(content["vector"].to_list(), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    pos = index_of(content["item_id"], item_vocab)
    out = np.zeros((len(item_vocab), vectors.shape[1]), dtype=np.float32)
    has = np.zeros(len(item_vocab), dtype=bool)
    out[pos[pos >= 0]] = vectors[pos >= 0]
    has[pos[pos >= 0]] = True
    return out, has
