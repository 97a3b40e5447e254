"""RecBole's sequential models (SASRec, GRU4Rec) as bench peers, fed from GENRE's split and scored by GENRE.

``fit`` writes the training positives of the split (each user's distinct items in GENRE's time order, the
position in that order as the timestamp, so RecBole cannot reorder ties) as an atomic ``.inter`` file in a
temp dir, builds RecBole's ``SequentialDataset`` from it (every prefix -> next item, at most
``max_len`` items of history), and trains the model with RecBole's own ``Trainer`` for ``epochs`` epochs
(no RecBole-side split or early stopping: the tuning budget on GENRE's validation split picks the setting, as
for every peer). ``score`` runs the model's encoder over each user's last ``max_len`` training items and
scores the whole catalogue with the item embeddings (RecBole's ``full_sort_predict`` formula); items RecBole
never saw in training get ``-inf`` (no content, so no cold-item ranking). Metrics come from GENRE's
evaluation code like every other peer. Needs ``recbole`` (installed --no-deps, see scripts/setup.sh) and the
NumPy 2 / SciPy shims of ``bench.recbole_shims``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from bench.peers_models import PeerRecommender
from bench.recbole_shims import install as install_shims
from genre_core.models.data import TrainData

DATASET = "genre"


@contextlib.contextmanager
def _recbole_sandbox(folder: Path) -> Any:
    """RecBole writes ``log_tensorboard/`` into the working directory and sets ``CUDA_VISIBLE_DEVICES``:
    run it in ``folder`` and restore both afterwards; silence its loggers."""
    cwd, cuda = os.getcwd(), os.environ.get("CUDA_VISIBLE_DEVICES")
    quiet = [logging.getLogger(n) for n in ("", "recbole")]
    levels = [lg.level for lg in quiet]
    os.chdir(folder)
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        os.chdir(cwd)
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
        if cuda is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = cuda


def write_inter(folder: Path, indptr: np.ndarray, indices: np.ndarray) -> Path:
    """``folder/genre/genre.inter``: one row per (user, item) of the CSR histories (int64 [n_users + 1],
    [nnz], time order), ``timestamp`` = position in the user's history. Users and items are GENRE indices."""
    path = folder / DATASET / f"{DATASET}.inter"
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.diff(indptr)
    users = np.repeat(np.arange(counts.size), counts)
    pos = np.arange(indices.size) - np.repeat(indptr[:-1], counts)
    with path.open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        f.writelines(f"{u}\t{i}\t{p}\n" for u, i, p in zip(users.tolist(), indices.tolist(), pos.tolist()))
    return path


class RecBoleSequential(PeerRecommender):
    """Base of the RecBole adapters: ``model_name`` is the RecBole class; ``_model_config`` maps our grid's
    params to RecBole's config keys. Common params: epochs, batch_size, lr, weight_decay, max_len."""

    library = "recbole"
    model_name = ""

    def _model_config(self, p: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        install_shims()
        from recbole.config import Config
        from recbole.data import create_dataset
        from recbole.data.dataloader import TrainDataLoader
        from recbole.trainer import Trainer
        from recbole.utils import get_model, init_seed

        # importing RecBole's sequential models runs ``torch.autograd.set_detect_anomaly(True)`` (in its
        # sine.py), which slows every later backward pass in the process several-fold; switch it back off
        torch.autograd.set_detect_anomaly(False)
        p = self.params
        cuda = torch.cuda.is_available()
        with tempfile.TemporaryDirectory(prefix="genre-recbole-") as tmp, _recbole_sandbox(Path(tmp)):
            write_inter(Path(tmp), self.hist_indptr.numpy(), self.hist_indices.numpy())
            conf = {
                "data_path": tmp, "checkpoint_dir": str(Path(tmp) / "ckpt"), "seed": self.seed,
                "reproducibility": True, "use_gpu": cuda, "gpu_id": "0" if cuda else "", "show_progress": False,
                "log_wandb": False, "save_dataset": False, "save_dataloaders": False, "state": "ERROR",
                "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
                "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
                "MAX_ITEM_LIST_LENGTH": int(p["max_len"]), "loss_type": "CE", "train_neg_sample_args": None,
                "epochs": int(p["epochs"]), "train_batch_size": int(p["batch_size"]),
                "learning_rate": float(p["lr"]), "weight_decay": float(p["weight_decay"]), "eval_step": 0,
                "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
                **self._model_config(p),
            }
            config = Config(model=self.model_name, dataset=DATASET, config_dict=conf)
            init_seed(self.seed, True)
            dataset = create_dataset(config)
            # what ``dataset.build()`` does first (to Interaction tensors + prefix -> next-item augmentation),
            # without RecBole's own split: GENRE's split already is the training part
            dataset._change_feat_format()
            train = TrainDataLoader(config, dataset, None, shuffle=True)
            net = get_model(self.model_name)(config, dataset).to(config["device"])
            # get_model imports the model package lazily, and with it sine.py's set_detect_anomaly(True): switch
            # it off again here, after the import (anomaly mode records a stack per op: ~10x slower backward)
            torch.autograd.set_detect_anomaly(False)
            Trainer(config, net).fit(train, valid_data=None, verbose=False, saved=False, show_progress=False)
        tokens = dataset.field2id_token["item_id"]  # RecBole item id -> token (GENRE index); 0 is [PAD]
        self._rb_items = torch.as_tensor(np.array([int(t) for t in tokens[1:]], dtype=np.int64))
        to_rb = np.zeros(self.idmap.n_items, dtype=np.int64)
        to_rb[self._rb_items.numpy()] = np.arange(1, len(tokens))
        self._to_rb = torch.as_tensor(to_rb)
        self._net = net.cpu().eval()
        self._max_len = int(p["max_len"])

    def _score(self, user_idx: torch.Tensor) -> torch.Tensor:
        b, n = user_idx.numel(), self._max_len
        seq = torch.zeros(b, n, dtype=torch.int64)
        lengths = torch.ones(b, dtype=torch.int64)
        for row, hist in enumerate(self.user_history(user_idx)):
            last = torch.as_tensor(hist[-n:], dtype=torch.int64)
            if last.numel():
                seq[row, : last.numel()] = self._to_rb[last]
                lengths[row] = last.numel()
        out = torch.zeros(b, self.idmap.n_items)
        with torch.inference_mode():
            rep = self._net(seq, lengths)  # [b, hidden]
            scores = rep @ self._net.item_embedding.weight[1:].T  # [b, n_rb_items]
        out[:, self._rb_items] = scores.float()
        empty = torch.as_tensor([h.size == 0 for h in self.user_history(user_idx)])
        out[empty] = 0.0  # no history: no sequence to encode (all items tie)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        return {"known": self.known, "rb_items": self._rb_items,
                **{f"net.{k}": v for k, v in self._net.state_dict().items()}}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        raise NotImplementedError("RecBole peers are benchmark-only: they are not saved and reloaded")


class RecBoleSASRec(RecBoleSequential):
    """RecBole's SASRec (causal self-attention over the last ``max_len`` items, full softmax CE loss); params:
    hidden, layers, heads, dropout (hidden and attention), plus the common ones."""

    name, model_name = "recbole-sasrec", "SASRec"

    def _model_config(self, p: dict[str, Any]) -> dict[str, Any]:
        h = int(p["hidden"])
        return {"hidden_size": h, "inner_size": 4 * h, "n_layers": int(p["layers"]), "n_heads": int(p["heads"]),
                "hidden_dropout_prob": float(p["dropout"]), "attn_dropout_prob": float(p["dropout"]),
                "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02}


class RecBoleGRU4Rec(RecBoleSequential):
    """RecBole's GRU4Rec (GRU over the last ``max_len`` items, full softmax CE loss); params: hidden (GRU and
    embedding size), layers, dropout, plus the common ones."""

    name, model_name = "recbole-gru4rec", "GRU4Rec"

    def _model_config(self, p: dict[str, Any]) -> dict[str, Any]:
        h = int(p["hidden"])
        return {"embedding_size": h, "hidden_size": h, "num_layers": int(p["layers"]),
                "dropout_prob": float(p["dropout"])}

