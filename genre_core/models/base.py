"""The model contract: an id mapping saved with every model and the ``Recommender`` base class.

The base class owns what every model shares: the training histories (CSR, item indices in time order, which
are the user's *seen* items), top-K through the one ranking path ``genre_core.ranking`` (``recommend``), device
moves and the save/load format. A subclass implements
``fit`` (or, for torch models, the one-epoch step in ``genre_core.models.training``), ``score`` and its state.

Saved model directory::

    model.json   {"name", "format", "params", "meta"}   (params: the model's config section, dumped; loading
                 validates it into the class's ``Config`` again, so a saved model keeps its own settings)
    idmap.json   users and items (string ids) in index order
    state.pt     tensors only (loaded with ``weights_only=True``), histories included
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from genre_core.ranking import CSR, rank_block

FORMAT_VERSION = 1


@dataclass
class IdMap:
    """String ids <-> dense indices for users and items; its own object, saved with the model."""

    users: list[str]
    items: list[str]
    user_index: dict[str, int] = field(init=False, repr=False)
    item_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.users = [str(u) for u in self.users]
        self.items = [str(i) for i in self.items]
        self.user_index = {u: k for k, u in enumerate(self.users)}
        self.item_index = {i: k for k, i in enumerate(self.items)}
        if len(self.user_index) != len(self.users):
            raise ValueError("IdMap: user ids are not unique")
        if len(self.item_index) != len(self.items):
            raise ValueError("IdMap: item ids are not unique")

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def user_indices(self, ids: list[str]) -> np.ndarray:
        """int64 [len(ids)]: the index of each user id, -1 where unknown."""
        return np.array([self.user_index.get(str(u), -1) for u in ids], dtype=np.int64)

    def item_indices(self, ids: list[str]) -> np.ndarray:
        """int64 [len(ids)]: the index of each item id, -1 where unknown."""
        return np.array([self.item_index.get(str(i), -1) for i in ids], dtype=np.int64)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"users": self.users, "items": self.items}), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> IdMap:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(users=list(data["users"]), items=list(data["items"]))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a GENRE id mapping ({exc})") from exc


def histories_to_csr(
    user: np.ndarray, item: np.ndarray, order: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group events per user, in ``order`` (e.g. timestamps) within a user, dropping repeated items.

    user, item: int64 [n]; order: int64/float [n]. Returns (indptr int64 [n_users + 1], indices int64 [nnz],
    positions int64 [nnz]); user u's items are ``indices[indptr[u]:indptr[u + 1]]``, first occurrence kept,
    and ``positions`` are the input rows they came from.
    """
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    if user.shape != item.shape or user.shape != np.shape(order):
        raise ValueError("user, item and order must have the same length")
    if user.size and (user.min() < 0 or user.max() >= n_users):
        raise ValueError(f"user index out of range [0, {n_users})")
    idx = np.lexsort((np.arange(user.size), order, user))
    u, i = user[idx], item[idx]
    keep = np.ones(u.size, dtype=bool)
    if u.size:
        pair = u * (int(item.max()) + 1) + i
        _, first = np.unique(pair, return_index=True)
        keep[:] = False
        keep[first] = True
    u, i = u[keep], i[keep]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(indptr, u + 1, 1)
    return np.cumsum(indptr), i, idx[keep]


class NoConfig(BaseModel):
    """The config section of a model without settings."""

    model_config = ConfigDict(extra="forbid")


class Recommender(ABC):
    """A trained recommender over the items of ``idmap``. Subclasses register with ``@MODELS.register(name)``
    and declare their typed config section (``train.<name>``) as ``Config``."""

    name: ClassVar[str] = ""
    #: the typed config section this model reads its settings from (one source of truth for defaults)
    Config: ClassVar[type[BaseModel]] = NoConfig
    #: True for models trained epoch by epoch (early stopping, refit for the best number of epochs)
    iterative: ClassVar[bool] = False
    #: True for models that score items unseen in training from their content (a cold-item slice is meaningful)
    scores_cold_items: ClassVar[bool] = False
    #: default search space of `genre tune`: {field of Config: {type: float|int|categorical, low, high, log,
    #: step, choices}} (genre_core.tuning.config.ParamSpace); empty: not tunable unless tune.spaces.<name> is set
    tune_space: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, idmap: IdMap, config: BaseModel | None = None, seed: int = 0) -> None:
        if config is not None and not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} takes a {self.Config.__name__}, got {type(config).__name__}")
        self.idmap = idmap
        self.config = config if config is not None else self.Config()
        self.seed = int(seed)
        self.device = torch.device("cpu")
        self.hist_indptr = torch.zeros(idmap.n_users + 1, dtype=torch.int64)
        self.hist_indices = torch.zeros(0, dtype=torch.int64)

    # -- training histories -------------------------------------------------------------------------------
    def set_histories(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        """Store the training histories (CSR over user indices, item indices in time order)."""
        if len(indptr) != self.idmap.n_users + 1:
            raise ValueError(f"histories cover {len(indptr) - 1} users, the id map has {self.idmap.n_users}")
        self.hist_indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64))
        self.hist_indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))

    def user_history(self, user_idx: torch.Tensor) -> list[np.ndarray]:
        """Item indices (int64, time order) each user interacted with in training; one array per user."""
        ptr = self.hist_indptr.numpy()
        ind = self.hist_indices.numpy()
        return [ind[ptr[u]: ptr[u + 1]] for u in self._check_users(user_idx).tolist()]

    def seen(self, user_idx: torch.Tensor) -> CSR:
        """The users' seen items (``genre_core.ranking``): their training histories, one CSR row per user of
        ``user_idx`` (int64 [b]), items in time order."""
        users = self._check_users(user_idx).numpy()
        return CSR(self.hist_indptr.numpy(), self.hist_indices.numpy()).take(users)

    def _check_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = torch.as_tensor(user_idx)
        if user_idx.dim() != 1 or user_idx.dtype != torch.int64:
            raise ValueError(f"user_idx must be an int64 tensor of shape [b], got {user_idx.dtype} {tuple(user_idx.shape)}")
        if user_idx.numel() and (int(user_idx.min()) < 0 or int(user_idx.max()) >= self.idmap.n_users):
            raise ValueError(f"user index out of range [0, {self.idmap.n_users})")
        return user_idx.cpu()

    # -- the contract ---------------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Any, valid: Any = None, **options: Any) -> Any:
        """Train on ``data`` (a ``TrainData``); iterative models may early-stop on ``valid`` (an ``EvalSet``)
        and accept ``epochs``, ``metric``, ``eval_every``, ``amp``, ``progress``, ``on_epoch``; others ignore
        them. Sets the training histories. Returns a ``FitReport``."""

    @abstractmethod
    def score(self, user_idx: torch.Tensor) -> torch.Tensor:
        """int64 [b] user indices -> float32 [b, n_items] scores on ``self.device``; higher is better."""

    def item_vectors(self) -> torch.Tensor | None:
        """float32 [n_items, d] item vectors (similar items, explanations), or None if the model has none."""
        return None

    def predict_rating(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor | None:
        """int64 [b] users x int64 [b] items -> float32 [b] predicted ratings (rating units), or None for a model
        without a trained rating head (the default)."""
        return None

    def recommend(
        self, user_idx: torch.Tensor, k: int, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` items per user: (item_idx int64 [b, k'], scores float32 [b, k']), k' = min(k, n_items).

        Ranked by ``genre_core.ranking.rank_block``: with ``exclude_seen`` the user's training items (``seen``)
        are excluded; slots that only seen items could fill hold item -1 and score -inf.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        user_idx = self._check_users(user_idx)
        with torch.inference_mode():
            scores = self.score(user_idx.to(self.device)).float().clone()
            return rank_block(scores, min(k, scores.shape[1]), self.seen(user_idx) if exclude_seen else None)

    def to(self, device: torch.device | str) -> Recommender:
        """Move the model's tensors to ``device``; returns self."""
        self.device = torch.device(device)
        self._to(self.device)
        return self

    def _to(self, device: torch.device) -> None:
        """Subclasses move their tensors/modules here."""

    # -- persistence ----------------------------------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to score (histories are added by the base class)."""

    @abstractmethod
    def load_state(self, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore from ``state()`` and ``meta()``."""

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable facts needed to rebuild the model (shapes, feature names)."""
        return {}

    def save(self, directory: Path) -> None:
        """Write model.json, idmap.json and state.pt into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state().items()}
        state["_hist_indptr"] = self.hist_indptr.cpu()
        state["_hist_indices"] = self.hist_indices.cpu()
        torch.save(state, directory / "state.pt")
        self.idmap.save(directory / "idmap.json")
        info = {"name": self.name, "format": FORMAT_VERSION, "params": self.config.model_dump(mode="json"),
                "seed": self.seed, "meta": self.meta()}
        (directory / "model.json").write_text(json.dumps(info, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, map_location: str | torch.device = "cpu") -> Recommender:
        """Load a saved model; on ``Recommender`` itself the class is picked from model.json by name."""
        from genre_core.models.registry import get_model_class  # registry imports the model modules

        directory = Path(directory)
        try:
            info = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{directory}: not a saved GENRE model (model.json: {exc})") from exc
        if info.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: model format {info.get('format')!r}, this GENRE reads {FORMAT_VERSION}")
        target = get_model_class(info["name"])
        if cls is not Recommender and not issubclass(target, cls):
            raise ValueError(f"{directory} holds a {info['name']!r} model, not {cls.name!r}")
        try:
            config = target.Config.model_validate(info.get("params") or {})
        except ValueError as exc:
            raise ValueError(f"{directory}/model.json: params do not fit {target.Config.__name__}: {exc}") from None
        model = target(IdMap.load(directory / "idmap.json"), config, seed=info.get("seed", 0))
        state = torch.load(directory / "state.pt", map_location="cpu", weights_only=True)
        model.set_histories(state.pop("_hist_indptr").numpy(), state.pop("_hist_indices").numpy())
        model.load_state(state, info.get("meta", {}))
        return model.to(map_location)
