"""The ``events`` config section: validation with key paths, legacy thresholds folded in, conf/mind.yaml."""
from __future__ import annotations

import pytest

from genre_core.config import PROJECT_ROOT, ConfigError, load_config
from genre_core.events import DEFAULT_KEY, resolve_rules
from genre_core.models.pipeline import fingerprint_config


def test_bad_role_and_unknown_key_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"events\.click\.role"):
        load_config(None, ["events.click.role=maybe"])
    with pytest.raises(ConfigError, match=r"events\.click\.rol: unknown key"):
        load_config(None, ["events.click.rol=positive"])
    with pytest.raises(ConfigError, match="min_value only applies"):
        load_config(None, ["events.skip.role=negative", "events.skip.min_value=1"])


def test_defaults_keep_every_event_positive_and_the_old_fingerprint() -> None:
    cfg = load_config(PROJECT_ROOT / "conf" / "movielens-100k.yaml")
    assert resolve_rules(cfg) == {}
    assert "events" not in fingerprint_config(cfg)  # an unchanged champion is not retrained for nothing


def test_legacy_thresholds_become_the_default_rule() -> None:
    rules = resolve_rules(load_config(None, ["train.split.min_positive_value=4"]))
    assert rules[DEFAULT_KEY].min_value == 4 and rules[DEFAULT_KEY].below == "ignore"
    rules = resolve_rules(load_config(None, ["recommend.positive_min_value=1"]))
    assert rules[DEFAULT_KEY].min_value == 1
    explicit = resolve_rules(load_config(None, ["train.split.min_positive_value=4", "events.default.role=ignore"]))
    assert explicit[DEFAULT_KEY].role == "ignore"


def test_mind_conf_sets_clicks_positive_skips_negative() -> None:
    cfg = load_config(PROJECT_ROOT / "conf" / "mind.yaml")
    rules = resolve_rules(cfg)
    assert (rules["click"].role, rules["skip"].role, rules["history"].role) == ("positive", "negative", "positive")
    assert cfg.train.split.kind == "global_time"
    assert "events" in fingerprint_config(cfg)
