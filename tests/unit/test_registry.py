"""One registry idiom: a typo in any registered name fails at config load, listing the valid names."""
from __future__ import annotations

import pytest

from genre_core.config import ConfigError, load_config
from genre_core.registry import Registry


@pytest.mark.parametrize(("override", "message"), [
    ("train.models=[popularity, itemknnn]",
     r"train\.models: unknown model 'itemknnn'; valid: blend, bpr, content, hybrid, itemknn, popularity, sasrec"),
    ("features.text.extractor=transformer-text",
     r"features\.text\.extractor: unknown feature extractor 'transformer-text'; valid: image, llm-encoder, transformers-text"),
    ("dataset.reader=movielen", r"dataset\.reader: unknown dataset reader 'movielen'; valid: generic, mind, movielens, recbole"),
    ("warehouse.publish_to=postgress", r"warehouse\.publish_to: unknown publish target 'postgress'; valid: duckdb, postgres"),
    ("llm.backend=transformer", r"llm\.backend: unknown llm backend 'transformer'; valid: ctranslate2, llama_engine, none, openai, transformers"),
    ("train.bprr.dim=8", r"train\.bprr: unknown key .*models: blend, bpr, content"),
    ("warehouse.postgress.url=x", r"warehouse\.postgress: unknown key .*publish targets: duckdb, postgres"),
    ("features.tags.dim=8", r"features\.tags: unknown key \(a plugin modality section needs `extractor: <name>`"),
    ("plugins=[no_such_genre_plugin]", r"plugins: cannot import 'no_such_genre_plugin'"),
])
def test_a_typo_in_a_registered_name_fails_at_load(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_typed_sections_reach_the_classes() -> None:
    cfg = load_config(overrides=["train.bpr.batch_size=512", "warehouse.publish_to=postgres",
                                 "warehouse.postgres.url=postgresql://u@h/db"])
    assert cfg.train.section("bpr").batch_size == 512 and cfg.train.section("popularity").half_life_days is None
    assert cfg.warehouse.section().url == "postgresql://u@h/db"
    with pytest.raises(ConfigError, match=r"train\.bpr\.batch_size: Input should be greater than or equal to 1"):
        load_config(overrides=["train.bpr.batch_size=0"])


def test_registry_rejects_a_second_class_under_a_taken_name() -> None:
    reg: Registry[object] = Registry("thing", "x.thing")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(ValueError, match="thing name 'a' is already registered by"):
        @reg.register("a")
        class B:
            pass

    assert reg.names() == ["a"] and reg.get("a") is A
    with pytest.raises(ValueError, match=r"unknown thing 'b'; valid: a"):
        reg.get("b")
