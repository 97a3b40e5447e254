"""The `tune` config section: search spaces checked at load time (key path in the message), effective spaces,
and the nightly's re-tune decision."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from genre_core.config import ConfigError, explicit_overrides, load_config
from genre_core.tuning.config import TuneConfig
from genre_core.tuning.schedule import retune_reason
from genre_core.tuning.store import TunedParams


def test_bad_search_space_key_fails_at_load_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["tune.spaces.hybrid.lrr={type: float, low: 0.001, high: 0.1}"])
    assert "spaces.hybrid.lrr" in str(err.value) and "not a parameter of train.hybrid" in str(err.value)
    assert "weight_decay" in str(err.value)  # the valid names are listed


@pytest.mark.parametrize("override, fragment", [
    ("tune.spaces.nosuch={dim: {type: int, low: 1, high: 2}}", "spaces.nosuch: no config section train.nosuch"),
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
