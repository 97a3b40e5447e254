"""Image features: bad files are failures not crashes, transformers vision models by path, real EfficientNet."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from genre_core.features.config import FeaturesConfig, ImageFeaturesConfig
from genre_core.features.image import ImageExtractor, decode_image
from genre_core.features.image_models import EfficientNetPreprocess
from tests.features.feature_data import ml100k_items


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A ~100-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def extractor(model: str, **image: object) -> ImageExtractor:
    section = ImageFeaturesConfig(model=model, num_workers=0, **image)
    return ImageExtractor(section, FeaturesConfig(device="cpu", image=section), torch.device("cpu"))


def test_decode_failures_have_reasons(tmp_path: Path, poster_dir: Path) -> None:
    good = poster_dir / "1.jpg"
    data = good.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(data[:20] + bytes(range(256)) * 4)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    bomb = png_bomb(tmp_path / "bomb.png", 60_000, 60_000)

    assert decode_image(str(good), 10_000)[0] is not None
    for path, prefix in [(truncated, "unreadable:"), (corrupt, "unreadable:"), (text, "unreadable:"),
                         (tmp_path / "absent.jpg", "missing:"), (bomb, "oversized:")]:
        image, reason = decode_image(str(path), 10_000_000)
        assert image is None and reason is not None and reason.startswith(prefix), (path.name, reason)
    reason = decode_image(str(bomb), 10_000_000)[1]
    assert "3600000000 pixels" in reason and "max_pixels=10,000,000" in reason
    image, reason = decode_image(str(good), 100)  # the limit comes from config
    assert image is None and reason.startswith("oversized:")


def test_efficientnet_preprocessing_is_224_and_scaled_around_127() -> None:
    x = EfficientNetPreprocess(224)(Image.new("RGB", (92, 138), (255, 127, 0)))
    assert x.shape == (3, 224, 224)
    np.testing.assert_allclose(x[:, 100, 100].numpy(), [(255 - 127) / 128, 0.0, -127 / 128], atol=1e-6)


@pytest.mark.parametrize("fixture", ["tiny_vit", "tiny_clip"])
def test_transformers_vision_model_loads_from_a_saved_folder(request, fixture: str, poster_dir: Path) -> None:
    folder: Path = request.getfixturevalue(fixture)
    ext = extractor(str(folder), batch_size=3)
    paths = [str(poster_dir / f"{i}.jpg") for i in range(1, 9)]
    out = ext.embed(paths)
    dim = 16 if fixture == "tiny_clip" else 32  # CLIP: the projected image embedding; ViT: pooled output
    assert out.positions == list(range(8)) and out.vectors.shape == (8, dim) and not out.failures
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, rtol=1e-5)
    assert str(folder) in ext.model_id
    # the same image gives the same vector whatever its batch neighbours
    again = ext.embed([paths[5]]).vectors[0]
    np.testing.assert_allclose(again, out.vectors[5], atol=1e-5)
    assert np.abs(out.vectors[0] - out.vectors[1]).max() > 1e-4  # different images, different vectors


def test_vit_pooled_output_matches_a_direct_forward(tiny_vit: Path, poster_dir: Path) -> None:
    from transformers import AutoImageProcessor, AutoModel

    ext = extractor(str(tiny_vit))
    vec = ext.embed([str(poster_dir / "3.jpg")]).vectors[0]
    proc, model = AutoImageProcessor.from_pretrained(tiny_vit), AutoModel.from_pretrained(tiny_vit).eval()
    with Image.open(poster_dir / "3.jpg") as im, torch.inference_mode():
        pooled = model(**proc(images=im.convert("RGB"), return_tensors="pt")).pooler_output[0]
    np.testing.assert_allclose(vec, (pooled / pooled.norm()).numpy(), atol=1e-5)


def test_bad_images_in_a_batch_do_not_stop_the_others(tiny_vit: Path, poster_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes((poster_dir / "2.jpg").read_bytes()[:300])
    bomb = png_bomb(tmp_path / "bomb.png", 50_000, 50_000)
    paths = [str(poster_dir / "1.jpg"), str(bad), str(poster_dir / "3.jpg"), str(bomb), str(poster_dir / "4.jpg")]
    out = extractor(str(tiny_vit), batch_size=2).embed(paths)
    assert out.positions == [0, 2, 4] and out.vectors.shape[0] == 3
    assert sorted(p for p, _ in out.failures) == [1, 3]


def test_decoding_workers_give_the_same_vectors(tiny_vit: Path, poster_dir: Path) -> None:
    paths = [str(poster_dir / f"{i}.jpg") for i in range(1, 9)]
    serial = extractor(str(tiny_vit), batch_size=4).embed(paths)
    section = ImageFeaturesConfig(model=str(tiny_vit), num_workers=2, batch_size=4)
    parallel = ImageExtractor(section, FeaturesConfig(device="cpu"), torch.device("cpu")).embed(paths)
    assert parallel.positions == serial.positions
    np.testing.assert_allclose(parallel.vectors, serial.vectors, atol=1e-6)


def test_prepare_hashes_file_bytes_and_flags_missing_paths(tiny_vit: Path, poster_dir: Path) -> None:
    items = pl.DataFrame({"item_id": ["1", "2", "3"],
                          "image_path": [str(poster_dir / "1.jpg"), None, str(poster_dir / "nope.jpg")]})
    c = extractor(str(tiny_vit)).prepare(items)
    import hashlib

    assert c[0].content_hash == hashlib.sha256((poster_dir / "1.jpg").read_bytes()).hexdigest() and c[0].error is None
    assert c[1].error == "missing: no image_path" and c[2].error.startswith("missing: file not found")


@pytest.mark.slow
def test_real_efficientnet_posters_of_a_franchise_are_nearer_than_random_pairs() -> None:
    """Real EfficientNet-Lite0 on real TMDB posters: mean cosine within franchises > mean over random pairs.

    Franchises (ml-100k ids): Star Wars 50/172/181, Godfather 127/187, Alien 183/176,
    and Three Colors 59/60/61 (Blue/Red/White). Random pairs: 300 pairs over ~50 other posters (ids 200-1399), seed 0.
    """
    franchises = [[50, 172, 181], [127, 187], [183, 176], [59, 60, 61]]
    rng = np.random.default_rng(0)
    franchise_ids = {i for f in franchises for i in f}
    others = [int(i) for i in rng.choice(np.arange(200, 1400), size=50, replace=False) if i not in franchise_ids]
    items = ml100k_items(sorted(franchise_ids) + others)
    ext = extractor("efficientnet-lite0", batch_size=32)
    contents = ext.prepare(items)
    ok = [c for c in contents if c.error is None]
    out = ext.embed([c.payload for c in ok])
    vec = {ok[p].item_id: v for p, v in zip(out.positions, out.vectors)}
    assert out.vectors.shape[1] == 1280
    within = [float(vec[str(a)] @ vec[str(b)]) for f in franchises for k, a in enumerate(f) for b in f[k + 1:]]
    pool = [str(i) for i in others if str(i) in vec]
    pairs = rng.choice(len(pool), size=(300, 2))
    random_pairs = [float(vec[pool[a]] @ vec[pool[b]]) for a, b in pairs if a != b]
    assert np.mean(within) > np.mean(random_pairs) + 0.05, (np.round(within, 3), np.mean(random_pairs))
