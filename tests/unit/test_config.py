from __future__ import annotations

import pytest

from genre_core.config import ConfigError, flatten, load_config
from tests.conftest import REPO


def test_defaults_and_dataset_file_merge():
    cfg = load_config(REPO / "conf" / "mind.yaml")
    assert cfg.dataset.reader == "mind" and cfg.recommend.k == 20  # default kept, dataset merged
    assert cfg.features.image.enabled is False


def test_override_sets_typed_value():
    cfg = load_config(None, ["recommend.k=7", "train.models=[popularity, bpr]", "train.register_model=null"])
    assert cfg.recommend.k == 7 and cfg.train.models == ["popularity", "bpr"]


@pytest.mark.parametrize(("override", "message"), [
    ("recommend.kk=3", r"recommend\.kk: unknown key"),
    ("recommend.k=abc", r"recommend\.k: Input should be a valid integer"),
    ("validation.max_reject_rate=2", r"validation\.max_reject_rate: Input should be less than or equal to 1"),
    ("dataset.reader=excel", r"dataset\.reader: unknown dataset reader 'excel'; valid: generic, mind, movielens, recbole"),
    ("nonsense", r"must look like key\.path=value"),
])
def test_bad_config_fails_with_key_path(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_flatten_gives_dotted_keys():
    flat = flatten(load_config(None))
    assert flat["recommend.k"] == 20 and flat["features.text.model"] == "minilm"
