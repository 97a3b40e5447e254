"""RecBole peers: the NumPy 2 / SciPy shims, the atomic file fed from GENRE's split, and the SASRec wrapper on the
tiny synthetic world (same split and metric code as every peer). Skipped with the reason when recbole is absent."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bench.peers_models import PEERS
from bench.peers_recbole import write_inter
from bench.peers_run import import_peer, run_peer
from bench.recbole_shims import install
from genre_core.config import load_config
from genre_core.models.pipeline import prepare
from tests.models.model_data import fill_warehouse, make_world


def test_shims_restore_what_recbole_needs() -> None:
    install()
    # np.float: float, or np.float64 (a float subclass) where a library RecBole imports set it first
    assert np.float_ is np.float64 and issubclass(np.float, float)  # type: ignore[attr-defined]
    m = sp.dok_matrix((3, 3), dtype=np.float32)
    m._update({(0, 1): 2.0, (2, 2): 1.0})  # type: ignore[attr-defined]
    assert m.toarray().tolist() == [[0, 2, 0], [0, 0, 0], [0, 0, 1]]
    assert install() == []  # idempotent: nothing left to add


def test_atomic_file_keeps_genre_time_order(tmp_path: Path) -> None:
    indptr, indices = np.array([0, 3, 3, 5]), np.array([7, 2, 9, 4, 1])  # user 1 has no history
    lines = write_inter(tmp_path, indptr, indices).read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float"
    assert lines[1:] == ["0\t7\t0", "0\t2\t1", "0\t9\t2", "2\t4\t0", "2\t1\t1"]


@pytest.mark.slow  # a RecBole SASRec fit: ~30 s on a shared 2-core CPU
def test_sasrec_wrapper_learns_the_planted_groups(genre_home: Path) -> None:
    reason = import_peer(PEERS["recbole-sasrec"])
    if reason:
        pytest.skip(reason)
    cfg = load_config(None, ["train.device=cpu", "train.split.test_last_n=2", "train.split.valid_fraction=0.2",
                             "train.split.cold_item_fraction=0.1", "train.split.cold_user_fraction=0", "train.seed=3"])
    fill_warehouse(cfg, make_world())
    prep = prepare(cfg)
    spec = PEERS["recbole-sasrec"]
    spec = replace(spec, grid=({**spec.grid[0], "batch_size": 16, "epochs": 15, "lr": 0.005},))
    cwd, cuda = os.getcwd(), os.environ.get("CUDA_VISIBLE_DEVICES")
    result = run_peer(spec, cfg, prep, budget=1, threads=1)
    assert os.getcwd() == cwd and os.environ.get("CUDA_VISIBLE_DEVICES") == cuda  # RecBole's side effects undone
    assert not torch.is_anomaly_enabled()  # RecBole's import turns anomaly detection on; the wrapper turns it off
    test = result.metrics["test"]
    # the two planted taste groups: a random order of the ~24 candidates would find well under half the targets
    assert test["n_users"] > 30 and test["recall@10"] >= 0.75, test
    assert result.metrics["cold_item"]["recall@10"] is None  # no content: cold items are not ranked
    assert result.library == "recbole" and result.valid_ndcg10 is not None and result.topk_s > 0
