"""Extra LLM modalities reach the models: the LLM-encoder item modality (text_llmenc) in content and hybrid,
and the cold-user generator's user vectors (cold_gen) in the hybrid's user representation."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from genre_core.config import load_config
from genre_core.models.data import TrainData
from genre_core.models.loading import read_warehouse, to_index_space
from genre_core.models.registry import build_model
from genre_core.warehouse import connect
from tests.models.conftest import FAST
from tests.models.model_data import N_ITEMS, N_USERS, World, fill_warehouse
from tests.models.test_models_hybrid import fit

GEN_USERS = np.array([0, 1, 2, 3])


def _with_llm(world: World, cold_gen: bool = True) -> TrainData:
    """The world's data plus a text_llmenc item modality (a noisy copy of text, 12 dims) and, for users 0-3,
    cold_gen vectors in the text space (pointing to the other taste group, so they visibly matter)."""
    rng = np.random.default_rng(1)
    data = world.data()
    enc = np.concatenate([world.text, rng.standard_normal((N_ITEMS, 4)).astype(np.float32)], axis=1)
    feats = {**data.item_features, "text_llmenc": enc}
    masks = {**data.item_feature_mask, "text_llmenc": np.ones(N_ITEMS, bool)}
    ufeats, umasks = {}, {}
    if cold_gen:
        gen = np.zeros((N_USERS, world.text.shape[1]), np.float32)
        gen[GEN_USERS, 1 - GEN_USERS % 2] = 1.0
        mask = np.zeros(N_USERS, bool)
        mask[GEN_USERS] = True
        ufeats, umasks = {"cold_gen": gen}, {"cold_gen": mask}
    return replace(data, item_features=feats, item_feature_mask=masks, user_features=ufeats,
                   user_feature_mask=umasks)


def test_content_and_hybrid_use_the_llm_encoder_modality(world: World) -> None:
    data = _with_llm(world, cold_gen=False)
    content = build_model("content", load_config(None, ["train.content.modalities=[text_llmenc]"]).train,
                          world.idmap)
    content.fit(data)
    assert content.modalities == ["text_llmenc"] and content.vectors.shape == (N_ITEMS, 12)
    hybrid = fit(world, "train.hybrid.modalities=[text, text_llmenc]", "train.hybrid.epochs=2", data=data)
    assert hybrid.modalities == ["text", "text_llmenc"] and set(hybrid.net.towers) == {"text", "text_llmenc"}
    assert torch.isfinite(hybrid.score(torch.arange(N_USERS))).all()


def test_generated_vectors_change_the_user_vector_of_those_users_only(world: World) -> None:
    model = fit(world, "train.hybrid.use_cold_gen=true", "train.hybrid.epochs=3", "train.hybrid.modalities=[text]",
                data=_with_llm(world))
    assert model.gen_modality == "text" and model.net.gen_mask.sum() == len(GEN_USERS)
    model.train_mode(False)
    users = torch.arange(N_USERS)
    with_gen = model.score(users)
    saved = model.net.gen_mask.clone()
    model.net.gen_mask.zero_()
    model._cache = None
    without = model.score(users)
    model.net.gen_mask.copy_(saved)
    changed = (with_gen - without).abs().amax(dim=1) > 1e-6
    assert changed[GEN_USERS].all() and not changed[N_USERS // 2:].any()

    # saved and loaded (as the recommend stage does), the generated vectors come along
    fresh = build_model("hybrid", load_config(None, [*FAST, "train.hybrid.use_cold_gen=true",
                                                       "train.hybrid.modalities=[text]"]).train, world.idmap)
    fresh.load_state(model.state(), model.meta())
    assert fresh.gen_modality == "text" and torch.equal(fresh.net.gen_vec, model.net.gen_vec)


def test_use_cold_gen_without_vectors_or_text_fails_clearly(world: World) -> None:
    with pytest.raises(ValueError, match="no user 'cold_gen' vectors"):
        fit(world, "train.hybrid.use_cold_gen=true", "train.hybrid.epochs=1", data=_with_llm(world, cold_gen=False))
    with pytest.raises(ValueError, match="needs the 'text' item modality"):
        fit(world, "train.hybrid.use_cold_gen=true", "train.hybrid.epochs=1", "train.hybrid.modalities=[image]",
            data=_with_llm(world))


def test_training_reads_every_stored_modality(genre_home, world: World) -> None:
    cfg = load_config(None, [])
    fill_warehouse(cfg, world)
    with connect(cfg) as con:
        con.execute("""INSERT INTO item_features SELECT item_id, 'text_llmenc', 'enc', content_hash, 3, [1, 0, 0]::FLOAT[],
                       now() FROM item_features WHERE modality = 'text'""")
        con.execute("INSERT INTO user_features VALUES ('u1', 'cold_gen', 'minilm', 'h', 8, ?, now())",
                    [[1.0] + [0.0] * 7])
    data, _, _ = to_index_space(read_warehouse(cfg), None)
    assert data.item_features["text_llmenc"].shape == (N_ITEMS, 3) and data.item_feature_mask["text_llmenc"].all()
    assert data.user_feature_mask["cold_gen"].sum() == 1
    assert data.modalities(["text", "text_llmenc"]) == ["text", "text_llmenc"]
