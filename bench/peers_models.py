"""Peer libraries behind GENRE's ``Recommender`` contract, so that one evaluation path scores everyone.

Each adapter fits the peer on the training positives (binary user x item matrix, every rating a positive) and
exposes ``score(user_idx) -> float32 [b, n_items]``. Items the peer never saw in training get ``-inf`` unless
the model can score them from content (``cold_capable``): ``implicit`` and cornac's BPR only rank items they
were trained on; VBPR scores an unseen item from its feature vector (its id factors and bias are zero), which
is the model's own cold-start formula.

Peers are not registered in ``genre_core.models.registry`` (that registry is GENRE's own config namespace);
``PEERS`` maps bench names to a ``PeerSpec`` with the tuning grid.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from genre_core.models.base import IdMap, Recommender
from genre_core.models.data import Interactions, TrainData
from genre_core.models.training import FitReport, timed


def positives_matrix(train: Interactions, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary float32 CSR [n_users, n_items]: 1 where the user has a training positive on the item."""
    pos = train.positives()
    m = sp.csr_matrix((np.ones(len(pos), np.float32), (pos.user, pos.item)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class PeerRecommender(Recommender):
    """Base of the peer adapters: fit on the training matrix, score as ``user_vecs @ item_vecs.T`` (or a
    subclass's ``_score``), unseen items at ``-inf`` unless ``cold_capable``."""

    library: str = ""
    cold_capable: bool = False

    def __init__(self, idmap: IdMap, params: dict[str, Any] | None = None, seed: int = 0,
                 threads: int = 1) -> None:
        super().__init__(idmap, None, seed)
        self.params: dict[str, Any] = dict(params or {})  # the peer library's own keyword arguments (grid point)
        self.threads = int(threads)
        self.user_vecs = torch.zeros(idmap.n_users, 0)
        self.item_vecs = torch.zeros(idmap.n_items, 0)
        self.known = torch.zeros(idmap.n_items, dtype=torch.bool)

    @abstractmethod
    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        """Train the peer on ``matrix`` (binary [n_users, n_items]) and set the vectors used by ``_score``."""

    def fit(self, data: TrainData, **_: Any) -> FitReport:
        """Fit on ``data.train``; returns the wall time in ``FitReport.fit_s``."""
        with timed() as t:
            self.set_histories(*data.histories())
            matrix = positives_matrix(data.train, self.idmap.n_users, self.idmap.n_items)
            self.known = torch.as_tensor(np.asarray(matrix.getnnz(axis=0) > 0))
            self._fit(data, matrix)
        return FitReport(fit_s=t.seconds)

    def _score(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_vecs[user_idx] @ self.item_vecs.T

    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        """int64 [b] -> float32 [b, n_items]; items unseen in training get -inf unless ``cold_capable``."""
        user_idx = self._check_users(user_idx)
        scores = self._score(user_idx).float()
        if not self.cold_capable:
            scores[:, ~self.known] = float("-inf")
        return scores

    def state(self) -> dict[str, torch.Tensor]:
        return {"user_vecs": self.user_vecs, "item_vecs": self.item_vecs, "known": self.known}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.user_vecs, self.item_vecs, self.known = state["user_vecs"], state["item_vecs"], state["known"]


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """implicit parallelises with its own threads; a BLAS thread pool underneath slows it down (and OpenBLAS
    warns about it), as implicit's own check says."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


# -- implicit ---------------------------------------------------------------------------------------------
class ImplicitALS(PeerRecommender):
    """implicit's CPU ALS (conjugate gradient); params: factors, regularization, alpha, iterations."""

    name, library = "implicit-als", "implicit"

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        with _one_blas_thread():  # implicit checks the BLAS pool when the model is built
            model = AlternatingLeastSquares(factors=int(p["factors"]), regularization=float(p["regularization"]),
                                            alpha=float(p["alpha"]), iterations=int(p["iterations"]),
                                            num_threads=self.threads, random_state=self.seed)
            model.fit(matrix, show_progress=False)
        self.user_vecs = torch.as_tensor(np.asarray(model.user_factors, np.float32))
        self.item_vecs = torch.as_tensor(np.asarray(model.item_factors, np.float32))


class ImplicitBPR(PeerRecommender):
    """implicit's CPU BPR (SGD, item bias folded into the factors); params: factors, learning_rate,
    regularization, iterations."""

    name, library = "implicit-bpr", "implicit"

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        model = BayesianPersonalizedRanking(factors=int(p["factors"]), learning_rate=float(p["learning_rate"]),
                                            regularization=float(p["regularization"]),
                                            iterations=int(p["iterations"]), num_threads=self.threads,
                                            random_state=self.seed)
        with _one_blas_thread():
            model.fit(matrix, show_progress=False)
        self.user_vecs = torch.as_tensor(np.asarray(model.user_factors, np.float32))
        self.item_vecs = torch.as_tensor(np.asarray(model.item_factors, np.float32))


class ImplicitItemItem(PeerRecommender):
    """implicit's item-item nearest neighbours; params: similarity ("cosine" | "bm25"), K (neighbours), and
    for bm25 K1, B. score(u) = history(u) @ similarity."""

    name, library = "implicit-itemknn", "implicit"

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        p = self.params
        if p["similarity"] == "cosine":
            model = CosineRecommender(K=int(p["K"]), num_threads=self.threads)
        elif p["similarity"] == "bm25":
            model = BM25Recommender(K=int(p["K"]), K1=float(p["K1"]), B=float(p["B"]), num_threads=self.threads)
        else:
            raise ValueError(f"implicit-itemknn: similarity must be 'cosine' or 'bm25', got {p['similarity']!r}")
        from implicit.utils import ParameterWarning

        with _one_blas_thread(), warnings.catch_warnings():
            # Cosine/BM25 fit hands implicit's own coo matrix to its CSR check (not something we passed)
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(matrix, show_progress=False)
        self._matrix = matrix
        self._sim = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _score(self, user_idx: torch.Tensor) -> torch.Tensor:
        rows = self._matrix[user_idx.numpy()]
        return torch.as_tensor(np.asarray((rows @ self._sim).todense(), dtype=np.float32))

    def state(self) -> dict[str, torch.Tensor]:
        s = self._sim.tocoo()
        return {"sim_indices": torch.as_tensor(np.stack([s.row, s.col]).astype(np.int64)),
                "sim_values": torch.as_tensor(s.data), "known": self.known}

    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        n = self.idmap.n_items
        idx, val = state["sim_indices"].numpy(), state["sim_values"].numpy()
        self._sim = sp.csr_matrix((val, (idx[0], idx[1])), shape=(n, n))
        ptr, ind = self.hist_indptr.numpy(), self.hist_indices.numpy()
        self._matrix = sp.csr_matrix((np.ones(ind.size, np.float32), ind, ptr), shape=(self.idmap.n_users, n))
        self.known = state["known"]


# -- cornac ------------------------------------------------------------------------------------------------
def _cornac_dataset(matrix: sp.csr_matrix, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """A cornac Dataset of the training positives with raw ids = GENRE indices as strings; returns it and the
    GENRE index of each cornac user / item index (int64 arrays)."""
    from cornac.data import Dataset

    coo = matrix.tocoo()
    triples = [(str(u), str(i), 1.0) for u, i in zip(coo.row.tolist(), coo.col.tolist())]
    ds = Dataset.build(triples, fmt="UIR", seed=seed)
    users = np.empty(ds.num_users, np.int64)
    items = np.empty(ds.num_items, np.int64)
    for raw, k in ds.uid_map.items():
        users[k] = int(raw)
    for raw, k in ds.iid_map.items():
        items[k] = int(raw)
    return ds, users, items


@contextlib.contextmanager
def _quiet() -> Any:
    """cornac prints progress lines (e.g. "Optimization finished!") even with verbose=False."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class CornacBPR(PeerRecommender):
    """cornac's BPR (Cython SGD with item bias); params: k, max_iter, learning_rate, lambda_reg."""

    name, library = "cornac-bpr", "cornac"

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        from cornac.models import BPR

        p = self.params
        ds, cu, ci = _cornac_dataset(matrix, self.seed)
        model = BPR(k=int(p["k"]), max_iter=int(p["max_iter"]), learning_rate=float(p["learning_rate"]),
                    lambda_reg=float(p["lambda_reg"]), seed=self.seed, verbose=False)
        with _quiet():
            model.fit(ds)
        k = int(p["k"])
        users = np.zeros((self.idmap.n_users, k + 1), np.float32)
        items = np.zeros((self.idmap.n_items, k + 1), np.float32)
        users[cu, :k], users[:, k] = model.u_factors, 1.0
        items[ci, :k], items[ci, k] = model.i_factors, model.i_biases
        self.user_vecs, self.item_vecs = torch.as_tensor(users), torch.as_tensor(items)


def content_features(data: TrainData, modality: str) -> np.ndarray:
    """float32 [n_items, d]: the stored vectors of ``modality`` ("text", "image" or "text+image", joined),
    scaled into [0, 1] by the max absolute value over items that have them; zero rows where missing."""
    names = modality.split("+")
    missing = [m for m in names if m not in data.item_features]
    if missing:
        raise ValueError(f"VBPR needs item modality {missing} but the warehouse stores {sorted(data.item_features)}"
                         "; run `genre features` first")
    parts = []
    for m in names:
        v = data.item_features[m].astype(np.float32).copy()
        mask = data.item_feature_mask[m]
        v -= v[mask].min() if mask.any() else 0.0
        v /= max(float(np.abs(v[mask]).max()) if mask.any() else 1.0, 1e-8)
        v[~mask] = 0.0
        parts.append(v)
    return np.concatenate(parts, axis=1)


class CornacVBPR(PeerRecommender):
    """cornac's VBPR (torch) fed GENRE's stored item vectors; params: k, k2, n_epochs, batch_size,
    learning_rate, lambda_w, lambda_b, lambda_e, modality ("image" = poster EfficientNet vectors, "text",
    "text+image"). Unseen items are scored from content alone: theta_u . (E f_i) + beta' . f_i."""

    name, library, cold_capable = "cornac-vbpr", "cornac", True

    def _fit(self, data: TrainData, matrix: sp.csr_matrix) -> None:
        from cornac.data import ImageModality
        from cornac.models import VBPR

        p = self.params
        feats = content_features(data, str(p["modality"]))
        ds, cu, ci = _cornac_dataset(matrix, self.seed)
        ds.add_modalities(item_image=ImageModality(features=feats[ci]))
        model = VBPR(k=int(p["k"]), k2=int(p["k2"]), n_epochs=int(p["n_epochs"]), batch_size=int(p["batch_size"]),
                     learning_rate=float(p["learning_rate"]), lambda_w=float(p["lambda_w"]),
                     lambda_b=float(p["lambda_b"]), lambda_e=float(p["lambda_e"]), use_gpu=False,
                     seed=self.seed, verbose=False)
        with _quiet():
            model.fit(ds)
        k, k2 = int(p["k"]), int(p["k2"])
        users = np.zeros((self.idmap.n_users, k + k2 + 1), np.float32)
        users[cu, :k], users[cu, k:k + k2], users[:, -1] = model.gamma_user, model.theta_user, 1.0
        items = np.zeros((self.idmap.n_items, k + k2 + 1), np.float32)
        items[ci, :k] = model.gamma_item
        items[:, k:k + k2] = feats @ model.emb_matrix
        items[:, -1] = (feats @ model.beta_prime).ravel()
        items[ci, -1] += model.beta_item
        self.user_vecs, self.item_vecs = torch.as_tensor(users), torch.as_tensor(items)


# -- specs -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerSpec:
    """A peer model: its adapter class, the package and modules it imports, its tuning grid (tried in order)."""

    name: str
    cls: Callable[..., PeerRecommender]
    package: str
    modules: tuple[str, ...]
    grid: tuple[dict[str, Any], ...]


def _grid(base: dict[str, Any], *variants: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    return tuple({**base, **v} for v in variants)


# Grids: sensible, diverse settings first (a budget takes a prefix); six each so every peer gets the same
# number of tries for any budget up to MAX_BUDGET.
MAX_BUDGET = 6
PEERS: dict[str, PeerSpec] = {
    "implicit-als": PeerSpec("implicit-als", ImplicitALS, "implicit", ("implicit.cpu.als",), _grid(
        {"iterations": 15},
        {"factors": 64, "regularization": 0.05, "alpha": 1.0}, {"factors": 32, "regularization": 0.01, "alpha": 1.0},
        {"factors": 128, "regularization": 0.1, "alpha": 2.0}, {"factors": 64, "regularization": 1.0, "alpha": 5.0},
        {"factors": 128, "regularization": 1.0, "alpha": 10.0}, {"factors": 16, "regularization": 0.01, "alpha": 1.0})),
    "implicit-bpr": PeerSpec("implicit-bpr", ImplicitBPR, "implicit", ("implicit.cpu.bpr",), _grid(
        {},
        {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
        {"factors": 128, "learning_rate": 0.01, "regularization": 0.05, "iterations": 100},
        {"factors": 32, "learning_rate": 0.02, "regularization": 0.01, "iterations": 100},
        {"factors": 64, "learning_rate": 0.05, "regularization": 0.001, "iterations": 100},
        {"factors": 128, "learning_rate": 0.005, "regularization": 0.01, "iterations": 200},
        {"factors": 32, "learning_rate": 0.01, "regularization": 0.001, "iterations": 200})),
    "implicit-itemknn": PeerSpec("implicit-itemknn", ImplicitItemItem, "implicit", ("implicit.nearest_neighbours",),
                                 _grid({"K1": 1.2, "B": 0.75},
                                       {"similarity": "cosine", "K": 50}, {"similarity": "bm25", "K": 50},
                                       {"similarity": "cosine", "K": 200}, {"similarity": "bm25", "K": 200},
                                       {"similarity": "cosine", "K": 20},
                                       {"similarity": "bm25", "K": 100, "K1": 100.0, "B": 0.8})),
    "cornac-bpr": PeerSpec("cornac-bpr", CornacBPR, "cornac", ("cornac.models",), _grid(
        {},
        {"k": 64, "max_iter": 200, "learning_rate": 0.01, "lambda_reg": 0.01},
        {"k": 128, "max_iter": 200, "learning_rate": 0.05, "lambda_reg": 0.01},
        {"k": 32, "max_iter": 200, "learning_rate": 0.01, "lambda_reg": 0.001},
        {"k": 64, "max_iter": 100, "learning_rate": 0.05, "lambda_reg": 0.001},
        {"k": 128, "max_iter": 300, "learning_rate": 0.01, "lambda_reg": 0.05},
        {"k": 256, "max_iter": 200, "learning_rate": 0.02, "lambda_reg": 0.01})),
    "cornac-vbpr": PeerSpec("cornac-vbpr", CornacVBPR, "cornac", ("cornac.models", "cornac.data"), _grid(
        {"batch_size": 1024, "lambda_b": 0.01, "lambda_e": 0.0},
        {"k": 32, "k2": 32, "n_epochs": 8, "learning_rate": 0.01, "lambda_w": 0.01, "modality": "image"},
        {"k": 32, "k2": 32, "n_epochs": 8, "learning_rate": 0.01, "lambda_w": 0.01, "modality": "text+image"},
        {"k": 64, "k2": 16, "n_epochs": 8, "learning_rate": 0.02, "lambda_w": 0.001, "modality": "image"},
        {"k": 16, "k2": 16, "n_epochs": 8, "learning_rate": 0.01, "lambda_w": 0.1, "modality": "text"},
        {"k": 64, "k2": 64, "n_epochs": 12, "learning_rate": 0.005, "lambda_w": 0.01, "modality": "text+image"},
        {"k": 32, "k2": 32, "n_epochs": 12, "learning_rate": 0.02, "lambda_w": 0.01, "modality": "image"})),
}
