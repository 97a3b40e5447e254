"""Text features: template rendering, the transformers path on a tiny saved BERT, real MiniLM behaviour."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.features.feature_data import ml100k_items

from genre_core.config import ConfigError, load_config
from genre_core.features.registry import EXTRACTORS
from genre_core.features.text import TextExtractor, encode_texts, render_text, resolve_model_source


def test_render_text_fills_template_and_renders_missing_fields_empty() -> None:
    row = {"title": "Star Wars (1977)", "category": "Action|Sci-Fi", "text": "A  farm boy\njoins rebels."}
    assert render_text("{title}. {category}. {text}", row) == "Star Wars (1977). Action, Sci-Fi. A farm boy joins rebels."
    assert render_text("{title} {enriched}", row) == "Star Wars (1977)"
    assert render_text("{title}. {text}", {"title": None, "text": None}) == ""


def test_template_with_unknown_field_fails_at_config_load() -> None:
    with pytest.raises(ConfigError, match="features.text.template.*unknown item fields.*titel"):
        load_config(None, ["features.text.template='{titel}. {text}'"])


def test_unknown_extractor_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown feature extractor 'bag-of-words'.*image.*transformers-text"):
        EXTRACTORS.get("bag-of-words")
    assert {"image", "transformers-text"} <= set(EXTRACTORS.names())


def test_minilm_resolves_through_the_installed_package() -> None:
    source, model_key = resolve_model_source("minilm", "features.text.model")
    assert (Path(source) / "config.json").is_file()
    assert "all-MiniLM-L6-v2" in model_key


def test_unloadable_model_says_so_and_how_to_use_a_local_copy(cfg_factory, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    cfg = cfg_factory(f"features.text.model={empty}")
    with pytest.raises(RuntimeError, match=r"cannot be loaded.*set features\.text\.model to that folder"):
        encode_texts(cfg, ["hello"])


def test_tiny_bert_mean_pooling_matches_a_manual_computation(cfg_factory, tiny_bert: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    texts = ["star war", "the jedi and the rebel empire ship in space", "love", "a dog and a cat"]
    cfg = cfg_factory(f"features.text.model={tiny_bert}", "features.text.batch_size=3")
    vectors, model_id = encode_texts(cfg, texts)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert str(tiny_bert) in model_id
    tok, model = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    with torch.inference_mode():
        for text, vec in zip(texts, vectors):  # one at a time: no padding at all, input order kept
            hidden = model(**tok(text, return_tensors="pt")).last_hidden_state[0]
            ref = hidden.mean(0) / hidden.mean(0).norm()
            np.testing.assert_allclose(vec, ref.numpy(), atol=1e-5)


def test_sorting_by_length_does_not_change_vectors_or_order(cfg_factory, tiny_bert: Path) -> None:
    texts = ["love", "the star war in space and the jedi", "a cat", "police crime night city detective murder"]
    on, _ = encode_texts(cfg_factory(f"features.text.model={tiny_bert}", "features.text.batch_size=2"), texts)
    off, _ = encode_texts(cfg_factory(f"features.text.model={tiny_bert}", "features.text.batch_size=2",
                                      "features.text.sort_by_length=false"), texts)
    np.testing.assert_allclose(on, off, atol=1e-5)


def test_max_length_is_part_of_the_model_id(cfg_factory, tiny_bert: Path) -> None:
    a = TextExtractor(cfg_factory(f"features.text.model={tiny_bert}").features.text, load_config().features,
                      torch.device("cpu"))
    b = TextExtractor(cfg_factory(f"features.text.model={tiny_bert}", "features.text.max_length=64").features.text,
                      load_config().features, torch.device("cpu"))
    assert a.model_id != b.model_id


def test_real_minilm_star_wars_is_nearer_its_sequel_than_a_romance(cfg_factory) -> None:
    """Real all-MiniLM-L6-v2 on real TMDB overviews (ml-100k ids): 50 Star Wars, 181 Return of the Jedi."""
    items = ml100k_items([50, 181, 172, 88, 69, 216]).sort("item_id")  # 88 Sleepless in Seattle, 216 When Harry Met Sally
    rows = {r["item_id"]: r for r in items.iter_rows(named=True)}
    cfg = cfg_factory("features.text.model=minilm", "features.text.max_length=128")
    texts = [render_text(cfg.features.text.template, rows[i]) for i in ("50", "181", "172", "88", "216")]
    vec, _ = encode_texts(cfg, texts)
    sim = vec @ vec.T
    assert sim[0, 1] > sim[0, 3] + 0.1 and sim[0, 1] > sim[0, 4] + 0.1, sim.round(3)
    assert sim[0, 2] > max(sim[0, 3], sim[0, 4]), sim.round(3)  # The Empire Strikes Back too


def test_encode_texts_reuses_the_loaded_model(cfg_factory, tiny_bert: Path) -> None:
    from genre_core.features.text import load_text_model

    cfg = cfg_factory(f"features.text.model={tiny_bert}")
    encode_texts(cfg, ["star"])
    before = load_text_model.cache_info().hits
    encode_texts(cfg, ["war"])
    assert load_text_model.cache_info().hits > before
