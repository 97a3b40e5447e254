"""The ``llm`` config section: defaults, templates checked at load time with the key path."""
from __future__ import annotations

import pytest

from genre_core.config import ConfigError, load_config
from genre_core.llm.config import ROLE_FIELDS, LLMConfig, template_fields


def test_defaults_are_valid_and_every_role_has_a_template():
    cfg = load_config().llm
    assert cfg.enabled is False and cfg.backend == "llama_engine" and cfg.model == "smollm2"
    for role in ROLE_FIELDS:
        assert template_fields(cfg.prompt(role).user) <= ROLE_FIELDS[role]
        assert cfg.new_tokens(role) == cfg.max_new_tokens


def test_unknown_placeholder_fails_at_load_with_the_key_path():
    with pytest.raises(ConfigError, match=r"llm.prompts.*enrich.user: unknown placeholder\(s\) \['director'\]"):
        load_config(overrides=["llm.prompts.enrich.user=Title: {title} by {director}"])


def test_malformed_template_and_bad_values_fail():
    with pytest.raises(ConfigError, match="malformed template"):
        load_config(overrides=["llm.prompts.profile.user=Liked {titles"])
    with pytest.raises(ConfigError, match="llm.roles"):
        load_config(overrides=["llm.roles=[enrich, enrich]"])
    with pytest.raises(ConfigError, match="llm.roles"):
        load_config(overrides=["llm.roles=[summarise]"])
    with pytest.raises(ConfigError, match="llm.max_calls"):
        load_config(overrides=["llm.max_calls=-1"])
    with pytest.raises(ConfigError, match="llm.backend: .*unknown llm backend 'vllm'; valid: ctranslate2, llama_engine, none, openai, transformers"):
        load_config(overrides=["llm.backend=vllm"])
    with pytest.raises(ConfigError, match="needs llm.base_url"):
        load_config(overrides=["llm.enabled=true", "llm.backend=openai"])
    with pytest.raises(ConfigError, match="llm.api_key"):
        load_config(overrides=["llm.api_key=sk-123"])  # keys never live in config


def test_per_role_output_limit_and_unknown_role():
    cfg = LLMConfig.model_validate({"prompts": {"enrich": {"system": "s", "user": "{title}", "max_new_tokens": 20}}})
    assert cfg.new_tokens("enrich") == 20 and cfg.new_tokens("profile") == 64
    with pytest.raises(ValueError, match="unknown llm role"):
        cfg.prompt("summarise")
