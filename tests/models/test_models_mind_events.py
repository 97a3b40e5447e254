"""On the MIND sample: the events of conf/mind.yaml make skips explicit negatives, and the test split holds whole
impressions that the MIND-style metrics can rank. No model is trained (the hybrid's use of the negatives is
checked in test_models_negatives.py). To keep it short, the first ``N_BEHAVIORS`` impressions are copied under tmp
(never into the repo) with the whole news file."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from genre_core.config import PROJECT_ROOT, load_config
from genre_core.ingest.pipeline import run_ingest
from genre_core.models.pipeline import prepare
from tests.conftest import shared_dataset

N_BEHAVIORS = 1000  # of the sample's 5000 impressions: ~1/5 of the events, still many clicks and skips


@pytest.mark.slow
def test_mind_skips_are_negatives_and_test_impressions_exist(genre_home, tmp_path: Path) -> None:  # noqa: ANN001
    src = shared_dataset("mind-small-sample")
    root = tmp_path / "data" / src.name
    root.mkdir(parents=True)
    shutil.copy(src / "news.tsv", root / "news.tsv")
    lines = (src / "behaviors.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "behaviors.tsv").write_text("".join(lines[:N_BEHAVIORS]), encoding="utf-8")
    cfg = load_config(PROJECT_ROOT / "conf" / "mind.yaml", [f"data_dir={root.parent}"])
    run_ingest(cfg, progress=False)
    prep = prepare(cfg)
    train = prep.split.train
    assert train.negative.any() and train.positive.any()
    assert not (train.positive & train.negative).any()
    # every explicit negative is a skip (value 0) and every positive a click (value 1, or a history click)
    assert (train.value[train.negative] == 0).all() and (train.value[train.positive] == 1).all()
    # the models' histories hold positives only: no skipped (user, item) is in a user's history unless clicked too
    indptr, indices = prep.data.with_train(train).histories()
    hist = {(u, int(i)) for u in range(len(indptr) - 1) for i in indices[indptr[u]: indptr[u + 1]]}
    neg_only = {(int(u), int(i)) for u, i in zip(train.user[train.negative], train.item[train.negative], strict=True)}
    neg_only -= {(int(u), int(i)) for u, i in zip(train.user[train.positive], train.item[train.positive], strict=True)}
    assert neg_only and not (neg_only & hist)
    imps = prep.impressions
    assert imps is not None and len(imps) > 0
    for j in range(len(imps)):  # each impression: one user, at least one click and one skip
        labels = imps.labels[imps.indptr[j]: imps.indptr[j + 1]]
        assert labels.any() and not labels.all()
    assert np.unique(imps.users).size <= len(imps)
