"""With LLM features switched on, run_train also trains the hybrid without them and logs the ablation."""
from __future__ import annotations

import mlflow
import numpy as np
import polars as pl

from genre_core.config import load_config
from genre_core.models.pipeline import run_train
from genre_core.tracking import tracking_uri
from genre_core.warehouse import connect


def _world(cfg, n_users: int = 40, n_items: int = 30) -> None:
    rng = np.random.default_rng(0)
    items = pl.DataFrame({"item_id": [f"i{j}" for j in range(n_items)], "title": [f"t{j}" for j in range(n_items)]})
    rows = []
    for u in range(n_users):
        group = u % 2
        for t, j in enumerate(rng.choice(np.arange(group, n_items, 2), size=10, replace=False)):
            rows.append((f"u{u}", f"i{j}", 4.0, 1_600_000_000 + 3600 * t))
    ix = pl.DataFrame(rows, schema=["user_id", "item_id", "value", "ts"], orient="row")
    vec = [[float(x) for x in np.eye(2)[j % 2] + 0.01 * rng.standard_normal(2)] for j in range(n_items)]
    with connect(cfg) as con:
        con.register("it", items.to_arrow())
        con.execute("INSERT INTO items (item_id, title) SELECT item_id, title FROM it")
        con.register("ix", ix.to_arrow())
        con.execute("INSERT INTO interactions SELECT md5(user_id || item_id), user_id, item_id, 'rating', value, "
                    "to_timestamp(ts), false, 'b' FROM ix")
        con.execute("INSERT INTO users SELECT DISTINCT user_id, '{}', 'b', now() FROM ix")
        for u in range(n_users):
            con.execute("INSERT INTO user_features VALUES (?, 'profile', 'm', 'h', 2, ?, now())",
                        [f"u{u}", [float(x) for x in np.eye(2)[u % 2]]])
        for mod in ("text", "text_llm", "text_llmenc"):
            for j, v in enumerate(vec):
                con.execute("INSERT INTO item_features VALUES (?, ?, 'm', 'h', 2, ?, now())", [f"i{j}", mod, v])


def test_llm_ablation_is_trained_and_logged(genre_home):
    cfg = load_config(None, ["train.models=[popularity, hybrid]", "train.register_model=hybrid",
                             "train.hybrid.use_llm_features=true",
                             "train.hybrid.epochs=2", "train.device=cpu",
                             "train.split.cold_item_fraction=0", "train.split.cold_user_fraction=0"])
    _world(cfg)
    out = run_train(cfg, progress=False)
    assert {"hybrid", "hybrid-without-llm"} <= set(out["models"])
    client = mlflow.MlflowClient(tracking_uri(cfg))
    parent = client.get_run(out["parent_run_id"])
    assert any(k.startswith("ablation_llm_delta.") for k in parent.data.metrics)
    off = client.get_run(out["models"]["hybrid-without-llm"]["run_id"])
    assert off.info.status == "FINISHED"
    # the "without" run drops every LLM item modality, the LLM-encoder one (taken by modalities null) included
    assert off.data.params["train.hybrid.modalities"] == "['text']"
    assert off.data.params["train.hybrid.use_profiles"] == "False"
