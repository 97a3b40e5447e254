"""Image features: posters from ``items.image_path``, decoded in a torch DataLoader, embedded by a backbone.

Bad images never stop a run: a missing or unreadable file, a truncated or corrupt JPEG, and an oversized
image (more pixels than ``features.image.max_pixels``: a decompression bomb) become a ``feature_failures``
row whose reason starts with ``missing:``, ``unreadable:`` or ``oversized:``.
"""
from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.context
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from genre_core.features.base import Batch, Content, FeatureExtractor, sha256_text
from genre_core.features.config import FeaturesConfig, ImageFeaturesConfig
from genre_core.security.paths import UnsafePath, confine, open_regular
from genre_core.features.image_models import make_backbone
from genre_core.features.registry import EXTRACTORS

if TYPE_CHECKING:  # polars only types the catalogue frame here; the encoders do not need it
    import polars as pl


@contextlib.contextmanager
def pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Set Pillow's ``Image.MAX_IMAGE_PIXELS`` for the block (process-wide: decoding runs in one thread)."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def decode_image(path: str, max_pixels: int) -> tuple[Image.Image | None, str | None]:
    """Open and fully decode ``path`` -> (RGB image, None) or (None, reason).

    The pixel count is checked from the header, before any decoding, against ``max_pixels`` (also given to
    Pillow as ``MAX_IMAGE_PIXELS``, whose bomb warning is an error here).
    """
    try:
        with warnings.catch_warnings(), pillow_pixel_limit(max_pixels):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with os.fdopen(open_regular(Path(path), None), "rb") as fh, Image.open(fh) as im:
                w, h = im.size  # from the header; nothing decoded yet
                if w * h > max_pixels:
                    return None, (f"oversized: {w}x{h} = {w * h:,} pixels > features.image.max_pixels="
                                  f"{max_pixels:,} (possible decompression bomb)")
                im.load()  # raises on truncated or corrupt data
                return im.convert("RGB"), None
    except UnsafePath as exc:
        return None, str(exc)
    except FileNotFoundError:
        return None, f"missing: file not found: {path}"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return None, f"oversized: {exc} (features.image.max_pixels={max_pixels:,})"
    except PermissionError as exc:
        return None, f"unreadable: {exc}"
    except Exception as exc:  # noqa: BLE001 - any decoder error on one file is that file's failure, recorded
        return None, f"unreadable: {type(exc).__name__}: {exc}"


class ImageDataset(Dataset):
    """Paths -> (position, pixels ``[3, H, W]`` or None, failure reason or None)."""

    def __init__(self, paths: Sequence[str], max_pixels: int, preprocess: Callable[[Image.Image], torch.Tensor]) -> None:
        self.paths = list(paths)
        self.max_pixels = max_pixels
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        image, reason = decode_image(self.paths[i], self.max_pixels)
        if image is None:
            return i, None, reason
        return i, self.preprocess(image), None  # preprocessing errors are bugs, not bad files: not caught


def collate(samples: list[tuple[int, torch.Tensor | None, str | None]]) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
    """Stack the decoded images; keep the positions of the ones that failed with their reasons."""
    ok = [(i, t) for i, t, _ in samples if t is not None]
    failed = [(i, r) for i, t, r in samples if t is None and r is not None]
    pixels = torch.stack([t for _, t in ok]) if ok else None
    return [i for i, _ in ok], pixels, failed


def worker_context() -> multiprocessing.context.BaseContext | None:
    """The forkserver context for decode workers, with torch and this module preloaded in the server.

    Fork is unsafe inside a threaded host (the Prefect engine runs tasks in threads: forked workers die with
    exit code 1); forkserver starts clean workers and needs only a picklable dataset. Preloading means each
    worker is forked from a server that has already imported torch, instead of importing it itself.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None  # e.g. Windows: the platform default (spawn)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "PIL.Image", __name__])
    return ctx


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the model for cores


def hash_file(path: Path, max_bytes: int) -> tuple[str, str | None]:
    """(sha256 of the file bytes, None) or (sha256 of the reason, reason) when it cannot be read.

    Regular files only, size checked before reading (``security.paths.open_regular``): a FIFO or a device is
    refused without blocking.
    """
    try:
        with os.fdopen(open_regular(path, None), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                reason = f"oversized: file is {size / 1e6:.1f} MB > features.image.max_file_mb={max_bytes / 1e6:g}"
                return sha256_text(f"{reason}:{path}"), reason
            return hashlib.file_digest(fh, "sha256").hexdigest(), None
    except UnsafePath as exc:
        reason = str(exc)
    except FileNotFoundError:
        reason = f"missing: file not found: {path}"
    except IsADirectoryError:
        reason = f"unreadable: is a directory: {path}"
    except OSError as exc:
        reason = f"unreadable: {exc}"
    return sha256_text(f"{reason}:{path}"), reason


@EXTRACTORS.register("image")
class ImageExtractor(FeatureExtractor):
    """``items.image_path`` -> L2-normalised pooled features of ``features.image.model``."""

    Config = ImageFeaturesConfig  # its section type (features.<modality>)
    cfg: ImageFeaturesConfig  # set by the base class
    data_root: Path | None = None  # image paths are confined here; the features pipeline sets the data dir
    data_base: Path | None = None  # relative image paths start here (the dataset folder)

    def __init__(self, section: ImageFeaturesConfig, features: FeaturesConfig, device: torch.device) -> None:
        super().__init__(section, features, device)
        self.backbone = make_backbone(section.model, device)

    @property
    def model_id(self) -> str:
        return f"image:{self.backbone.model_id}"

    def prepare(self, items: pl.DataFrame) -> list[Content]:
        """Hash every item's image file (sha256 of its bytes); no image_path or an unreadable file fails here."""
        for col in ("item_id", "image_path"):
            if col not in items.columns:
                raise ValueError(f"items frame has no {col} column")
        max_bytes = int(self.cfg.max_file_mb * 1e6)
        out: list[Content] = []
        for item_id, raw in items.select("item_id", "image_path").iter_rows():
            if raw is None or not str(raw).strip():
                out.append(Content(str(item_id), sha256_text("missing: no image_path"), None, "missing: no image_path"))
                continue
            try:
                path = confine(self.data_root, str(raw), self.data_base)  # inside the data dir, no ~, no escaping symlink
            except UnsafePath as exc:
                out.append(Content(str(item_id), sha256_text(f"{exc}"), None, str(exc)))
                continue
            digest, reason = hash_file(path, max_bytes)
            out.append(Content(str(item_id), digest, None if reason else str(path), reason))
        return out

    def batches(self, payloads: Sequence[Any]) -> Iterator[Batch]:
        """Decode in a DataLoader (``num_workers`` processes; 0 = in this process), ``batch_size`` per batch."""
        if not payloads:
            return
        dataset = ImageDataset(payloads, self.cfg.max_pixels, self.backbone.preprocessor())
        # a single batch decodes in this process: starting workers (a fresh interpreter each) costs more
        workers = 0 if len(payloads) <= self.batch_size else min(self.cfg.num_workers, len(payloads) // self.batch_size)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_worker_init if workers else None,
            multiprocessing_context=worker_context() if workers else None,
        )
        for positions, pixels, failed in loader:
            yield Batch(positions, pixels, failed)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """Pixels ``[b, 3, H, W]`` -> pooled features ``[b, d]``."""
        return self.backbone.forward(inputs.to(self.device, non_blocking=True))
