"""The `tune` config section: search spaces checked at load time (key path in the message), effective spaces,
and the nightly's re-tune decision."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from pydantic import BaseModel, ConfigDict

from genre_core.config import ConfigError, explicit_overrides, load_config
from genre_core.models.popularity import Popularity
from genre_core.models.registry import MODELS
from genre_core.tuning.config import TuneConfig, with_section
from genre_core.tuning.schedule import retune_reason
from genre_core.tuning.spaces import default_space
from genre_core.tuning.store import TunedParams


def test_bad_search_space_key_fails_at_load_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["tune.spaces.hybrid.lrr={type: float, low: 0.001, high: 0.1}"])
    assert "spaces.hybrid.lrr" in str(err.value) and "not a parameter of train.hybrid" in str(err.value)
    assert "weight_decay" in str(err.value)  # the valid names are listed


@pytest.mark.parametrize("override, fragment", [
    ("tune.spaces.nosuch={dim: {type: int, low: 1, high: 2}}", "spaces.nosuch: unknown model 'nosuch'; valid: "),
    ("tune.spaces.bpr.lr={type: float, low: 0.5, high: 0.1}", "low (0.5) must not exceed high (0.1)"),
    ("tune.spaces.bpr.lr={type: float, low: 0, high: 0.1, log: true}", "log-scaled space needs low > 0"),
    ("tune.spaces.bpr.dim={type: categorical}", "non-empty `choices`"),
    ("tune.spaces.bpr.lr={type: gaussian, low: 0, high: 1}", "tune.spaces.bpr.lr"),
    ("tune.metric=auc", "use ndcg@K, recall@K, hitrate@K or mrr"),
])
def test_bad_tune_values_name_the_key(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)


def test_effective_space_applies_yaml_overrides_and_drops_nulls() -> None:
    cfg = load_config(None, ["tune.spaces.bpr.lr={type: float, low: 0.05, high: 0.2}", "tune.spaces.bpr.dim=null",
                             "tune.spaces.bpr.epochs={type: int, low: 5, high: 50}"])
    space = cfg.tune.space("bpr")
    assert set(space) == {"lr", "weight_decay", "epochs"}
    assert (space["lr"].low, space["lr"].high, space["lr"].log) == (0.05, 0.2, False)
    assert space["epochs"].contains(20) and not space["epochs"].contains(60) and not space["epochs"].contains(2.5)
    assert explicit_overrides(cfg)[0] == "tune.spaces.bpr.lr"


def test_a_model_without_any_space_is_refused() -> None:
    with pytest.raises(ValueError, match="'bpr' has no search space"):
        TuneConfig(models=["bpr"], spaces={"bpr": {"dim": None, "lr": None, "weight_decay": None}})


@pytest.mark.parametrize("model", MODELS.names())
def test_every_registered_default_space_fits_its_typed_config(model: str) -> None:
    space = default_space(model)  # validates tune_space against the class's Config
    section = MODELS.get(model).Config()
    assert set(space) <= set(type(section).model_fields)
    assert all(dim.contains(getattr(section, name)) for name, dim in space.items())  # the default is a point


class _PluginConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = 0.5  # weight
    depth: int = 2  # layers


@pytest.fixture
def plugin_model() -> Iterator[type]:
    @MODELS.register("tuneplug")
    class TunePlug(Popularity):
        Config = _PluginConfig
        tune_space = {"alpha": {"type": "float", "low": 0.0, "high": 1.0}, "depth": {"type": "int", "low": 1,
                                                                                      "high": 4}}

    yield TunePlug
    MODELS.unregister("tuneplug")


def test_a_plugin_model_declares_its_own_space_and_takes_tuned_values(plugin_model: type) -> None:
    cfg = load_config(None, ["train.models=[tuneplug]", "train.register_model=null", "tune.models=[tuneplug]",
                             "train.tuneplug.depth=3",
                             "tune.spaces.tuneplug.depth={type: int, low: 2, high: 8}"])
    space = cfg.tune.space("tuneplug")
    assert (space["alpha"].high, space["depth"].low, space["depth"].high) == (1.0, 2, 8)
    tuned = with_section(cfg, "tuneplug", {"alpha": 0.25})
    assert tuned.train.section("tuneplug") == _PluginConfig(alpha=0.25, depth=3)
    assert cfg.train.section("tuneplug").alpha == 0.5  # the original is untouched
    with pytest.raises(ConfigError, match=r"spaces.tuneplug.lr: not a parameter of train.tuneplug \(valid: alpha, depth\)"):
        load_config(None, ["tune.spaces.tuneplug.lr={type: float, low: 0.1, high: 0.2}"])


def test_a_class_space_naming_no_config_field_fails_naming_the_class(plugin_model: type) -> None:
    plugin_model.tune_space = {"gamma": {"type": "float", "low": 0.0, "high": 1.0}}
    with pytest.raises(ConfigError, match=r"TunePlug.tune_space\['gamma'\]: not a field of _PluginConfig"):
        load_config(None, ["tune.models=[tuneplug]"])


def _stored(days_ago: float, rows: int) -> TunedParams:
    now = datetime(2026, 12, 1, 2, 0)
    return TunedParams("d", "hybrid", {}, "ndcg@10", 0.1, 0.09, 3, 10, 2, rows, None, now - timedelta(days=days_ago))


def test_retune_reason() -> None:
    now = datetime(2026, 12, 1, 2, 0)
    plain = TuneConfig()
    assert retune_reason(plain, None, 100, now) == "never tuned on this dataset"
    assert retune_reason(plain, _stored(400, 100), 10_000, now) is None  # nothing configured: reuse forever
    weekly = TuneConfig(every_days=7)
    assert retune_reason(weekly, _stored(6.5, 100), 100, now) is None
    assert "7.0 days old" in retune_reason(weekly, _stored(7.0, 100), 100, now)
    grow = TuneConfig(when_data_grew=0.1)
    assert retune_reason(grow, _stored(1, 1000), 1099, now) is None
    assert "grew by 10.0%" in retune_reason(grow, _stored(1, 1000), 1100, now)


def test_source_lines_say_where_each_parameter_came_from() -> None:
    from genre_core.tuning.report import source_lines

    lines = source_lines({"hybrid": {"lr": "tuned (trial 3)", "dim": "tuned (trial 3)", "epochs": "--set",
                                     "fusion": "config"}, "bpr": {"lr": "config"}})
    assert lines == ["train.hybrid: dim, lr from tuned (trial 3); epochs from --set", "train.bpr: all from config"]
