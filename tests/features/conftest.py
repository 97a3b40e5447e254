"""Fixtures for the features tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from genre_core.config import GenreConfig, load_config


@pytest.fixture
def cfg_factory(genre_home: Path):
    """Build a config for the test's GENRE_HOME: cpu, no decode workers, plus ``key=value`` overrides."""

    def make(*overrides: str) -> GenreConfig:
        # the test's tmp folder is the data dir: image paths (tmp/posters) must lie inside it
        return load_config(None, ["features.device=cpu", "features.image.num_workers=0",
                                  f"data_dir={genre_home.parent}", *overrides])

    return make


WORDS = ("the a of and to in space war star jedi empire rebel love romance wedding heart kiss city night "
         "detective murder police crime family comedy funny dog cat robot ship planet galaxy girl boy").split()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT (hidden 32) with a small word-piece vocab, saved with save_pretrained; random weights."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *".,!?'-"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer ViT (32x32 input, hidden 32) with its image processor, saved with save_pretrained."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tmp_path_factory.mktemp("tiny_vit")
    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)
    ViTModel(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP (text + vision towers, projection 16) with its image processor, saved with save_pretrained."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(text_config={**tower, "vocab_size": 64, "bos_token_id": 0, "eos_token_id": 1,
                                     "pad_token_id": 1},
                        vision_config={**tower, "image_size": 32, "patch_size": 8}, projection_dim=16)
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture
def poster_dir(tmp_path: Path) -> Path:
    """Eight small synthetic JPEG posters (distinct solid colours with a stripe), 24x36 like real thumbnails."""
    from PIL import Image, ImageDraw

    folder = tmp_path / "posters"
    folder.mkdir()
    for i in range(8):
        im = Image.new("RGB", (24, 36), ((37 * i) % 256, (91 * i) % 256, (151 * i) % 256))
        ImageDraw.Draw(im).rectangle([0, 4 * i % 36, 23, 4 * i % 36 + 3], fill=(255 - 30 * i, 20 * i, 128))
        im.save(folder / f"{i + 1}.jpg", quality=90)
    return folder
