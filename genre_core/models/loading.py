"""Read what training needs from the warehouse: one short read-only connection, polars frames out."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from genre_core.config import GenreConfig
from genre_core.events import DEFAULT_KEY, EventRule, classify
from genre_core.models.base import IdMap
from genre_core.models.data import Interactions, TrainData, vectors_matrix
from genre_core.warehouse import connect


@dataclass(frozen=True)
class WarehouseFrames:
    """Raw warehouse inputs of one training run (string ids as stored)."""

    interactions: pl.DataFrame  # user_id, item_id, event_type, value, ts (Int64 epoch s, null), is_history
    items: list[str]  # every item in `items` or `interactions`, sorted
    users: list[str]  # every user in `users` or `interactions`, sorted
    item_features: dict[str, pl.DataFrame]  # modality -> (item_id, vector)
    user_features: dict[str, pl.DataFrame]  # modality -> (user_id, vector)
    feature_state: pl.DataFrame  # item_id, modality, model_id, content_hash (fingerprint input)


def _frame(con, sql: str, params: list | None = None) -> pl.DataFrame:  # noqa: ANN001 - duckdb connection
    out = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    if not isinstance(out, pl.DataFrame):
        raise TypeError("expected a table from the warehouse")
    return out


def read_warehouse(cfg: GenreConfig) -> WarehouseFrames:
    """Interactions, catalogue, users and every stored content modality (item_features and user_features:
    text, image, text_llm, profile and any plugin extractor's, in the order first stored); which ones a model
    uses is its config's call."""
    with connect(cfg, read_only=True) as con:
        inter = _frame(con, """SELECT user_id, item_id, event_type, value, epoch(ts)::BIGINT AS ts, is_history
                               FROM interactions ORDER BY user_id, ts NULLS FIRST, event_key""")
        items = _frame(con, "SELECT item_id FROM items UNION SELECT item_id FROM interactions ORDER BY item_id")
        users = _frame(con, "SELECT user_id FROM users UNION SELECT user_id FROM interactions ORDER BY user_id")
        item_feats, user_feats = ({
            m: _frame(con, f"SELECT {key}, vector FROM {table} WHERE modality = ? ORDER BY {key}", [m])
            for (m,) in con.execute(f"SELECT modality FROM {table} GROUP BY 1 ORDER BY min(created_at), 1").fetchall()
        } for table, key in (("item_features", "item_id"), ("user_features", "user_id")))
        state = _frame(con, """SELECT item_id, modality, model_id, content_hash FROM item_features
                               UNION ALL SELECT user_id, modality, model_id, content_hash FROM user_features
                               ORDER BY 2, 1""")
    if inter.height == 0:
        raise ValueError("the warehouse has no interactions: run `genre ingest` first")
    return WarehouseFrames(
        interactions=inter,
        items=items["item_id"].cast(pl.String).to_list(),
        users=users["user_id"].cast(pl.String).to_list(),
        item_features={m: f for m, f in item_feats.items() if f.height},
        user_features={m: f for m, f in user_feats.items() if f.height},
        feature_state=state,
    )


def to_index_space(
    frames: WarehouseFrames, rules: dict[str, EventRule] | float | None = None
) -> tuple[TrainData, Interactions, np.ndarray]:
    """Build the id mapping, all events in index space and the content matrices.

    Returns (data with an empty ``train``, all events, is_history bool [n]). History rows (NULL ts) get a
    timestamp before every real one so they sort first. ``positive`` / ``negative`` / ``weight`` come from the
    ``events`` rules (``genre_core.events.resolve_rules``); no rules: every row is a positive. A bare number is
    the legacy ``min_positive_value`` (value >= it positive, NULL values positive, the rest ignored).
    """
    if rules is None or isinstance(rules, (int, float)):
        rules = {} if rules is None else {DEFAULT_KEY: EventRule(min_value=float(rules))}
    idmap = IdMap(users=frames.users, items=frames.items)
    df = frames.interactions
    user = idmap.user_indices(df["user_id"].cast(pl.String).to_list())
    item = idmap.item_indices(df["item_id"].cast(pl.String).to_list())
    if (user < 0).any() or (item < 0).any():
        raise ValueError("interactions reference ids missing from the id mapping")
    value = df["value"].cast(pl.Float32).fill_null(float("nan")).to_numpy().astype(np.float32)
    ts_col = df["ts"]
    floor = int(ts_col.min()) - 1 if ts_col.null_count() < df.height else 0
    ts = ts_col.fill_null(floor).to_numpy().astype(np.int64)
    positive, negative, weight = classify(df.with_columns(pl.col("value").cast(pl.Float64)), rules)
    history = df["is_history"].fill_null(False).to_numpy().astype(bool)
    events = Interactions(user.astype(np.int64), item.astype(np.int64), value, ts, positive, negative, weight)
    item_feats, item_masks = {}, {}
    for m, f in frames.item_features.items():
        item_feats[m], item_masks[m] = vectors_matrix(f, idmap.item_index, idmap.n_items, f"item_features[{m}]")
    user_feats, user_masks = {}, {}
    for m, f in frames.user_features.items():
        user_feats[m], user_masks[m] = vectors_matrix(f, idmap.user_index, idmap.n_users, f"user_features[{m}]")
    data = TrainData(idmap, Interactions.empty(), item_feats, item_masks, user_feats, user_masks)
    return data, events, history


def fingerprint(frames: WarehouseFrames, train_config: dict) -> str:
    """sha256 over the interactions, the catalogue, the content vectors' (id, modality, model_id, hash) and
    the train config: unchanged inputs give the same string."""
    h = hashlib.sha256()
    h.update(frames.interactions.write_csv().encode())
    h.update("\n".join(frames.items).encode())
    h.update(b"\x00")
    h.update("\n".join(frames.users).encode())
    h.update(frames.feature_state.write_csv().encode())
    h.update(json.dumps(train_config, sort_keys=True, default=str).encode())
    return h.hexdigest()
