"""The features stage against a warehouse: incremental runs, model changes, failures, storage contract."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from genre_core.features.pipeline import run_features
from genre_core.features.store import load_item_vectors
from genre_core.warehouse import connect
from tests.conftest import shared_dataset
from tests.features.feature_data import delete_items, insert_items, ml100k_items

OVERVIEWS = ["the jedi and the rebel ship in space", "love and a wedding in the city", "a detective and a murder",
             "a dog and a cat family comedy", "robot war on a planet", "a girl and a boy romance",
             "police crime at night", "the empire in the galaxy"]


def catalogue(posters: Path, n: int = 8) -> pl.DataFrame:
    return pl.DataFrame({
        "item_id": [str(i) for i in range(1, n + 1)],
        "title": [f"movie {i}" for i in range(1, n + 1)],
        "text": OVERVIEWS[:n],
        "category": ["comedy|crime"] * n,
        "image_path": [str(posters / f"{i}.jpg") for i in range(1, n + 1)],
    })


@pytest.fixture
def tiny_cfg(cfg_factory, tiny_bert: Path, tiny_vit: Path):
    def make(*overrides: str):
        return cfg_factory(f"features.text.model={tiny_bert}", f"features.image.model={tiny_vit}",
                           "features.text.batch_size=3", "features.image.batch_size=3", *overrides)
    return make


def rows(cfg, table: str, modality: str) -> list[tuple]:
    with connect(cfg) as con:
        return con.execute(f"SELECT * FROM {table} WHERE modality = ? ORDER BY item_id", [modality]).fetchall()


def test_second_run_embeds_nothing_and_an_edit_re_embeds_exactly_that_item(tiny_cfg, poster_dir: Path) -> None:
    cfg = tiny_cfg()
    insert_items(cfg, catalogue(poster_dir))
    first = run_features(cfg, progress=False)
    assert (first["text"]["embedded"], first["image"]["embedded"]) == (8, 8)
    assert first["text"]["device"] == "cpu" and first["text"]["dim"] == 32
    with connect(cfg) as con:
        ids_before, text_before, model_before = load_item_vectors(con, "text")

    second = run_features(cfg, progress=False)
    assert second["text"]["embedded"] == 0 and second["text"]["skipped"] == 8
    assert second["image"]["embedded"] == 0 and second["image"]["skipped"] == 8

    edited = catalogue(poster_dir).with_columns(
        pl.when(pl.col("item_id") == "3").then(pl.lit("a cat detective")).otherwise(pl.col("text")).alias("text"))
    insert_items(cfg, edited)
    third = run_features(cfg, progress=False)
    assert (third["text"]["embedded"], third["text"]["skipped"], third["image"]["embedded"]) == (1, 7, 0)
    with connect(cfg) as con:
        ids, text, model_id = load_item_vectors(con, "text")
    assert ids == ids_before and model_id == model_before
    changed = np.abs(text - text_before).max(axis=1) > 1e-6
    assert changed.tolist() == [i == "3" for i in ids]


def test_replacing_a_poster_file_re_embeds_that_image(tiny_cfg, poster_dir: Path) -> None:
    cfg = tiny_cfg()
    insert_items(cfg, catalogue(poster_dir))
    run_features(cfg, progress=False)
    (poster_dir / "5.jpg").write_bytes((poster_dir / "6.jpg").read_bytes())
    again = run_features(cfg, progress=False)
    assert again["image"]["embedded"] == 1 and again["text"]["embedded"] == 0


def test_changed_model_re_embeds_all_and_leaves_no_old_vectors(tiny_cfg, tiny_clip: Path, poster_dir: Path) -> None:
    cfg = tiny_cfg()
    insert_items(cfg, catalogue(poster_dir))
    old = run_features(cfg, progress=False)["image"]["model_id"]
    cfg2 = tiny_cfg(f"features.image.model={tiny_clip}")
    summary = run_features(cfg2, progress=False)
    assert summary["image"]["embedded"] == 8 and summary["text"]["embedded"] == 0
    stored = rows(cfg2, "item_features", "image")
    assert {r[2] for r in stored} == {summary["image"]["model_id"]} != {old}
    assert {r[4] for r in stored} == {16} and len(stored) == 8  # CLIP projection dim, not the ViT's 32


def test_changed_model_with_a_failing_item_leaves_no_old_vector(tiny_cfg, tiny_clip: Path, poster_dir: Path) -> None:
    cfg = tiny_cfg()
    insert_items(cfg, catalogue(poster_dir))
    run_features(cfg, progress=False)
    (poster_dir / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    summary = run_features(tiny_cfg(f"features.image.model={tiny_clip}"), progress=False)
    assert (summary["image"]["embedded"], summary["image"]["failed"], summary["image"]["removed"]) == (7, 1, 1)
    stored = rows(cfg, "item_features", "image")
    assert [r[0] for r in stored] == ["1", "3", "4", "5", "6", "7", "8"]
    assert len({r[2] for r in stored}) == 1


def test_bad_images_are_recorded_and_the_run_goes_on(tiny_cfg, poster_dir: Path, tmp_path: Path) -> None:
    from tests.features.test_features_image import png_bomb

    cfg = tiny_cfg()
    items = catalogue(poster_dir)
    (poster_dir / "2.jpg").write_bytes((poster_dir / "2.jpg").read_bytes()[:200])  # truncated JPEG
    (poster_dir / "4.jpg").unlink()  # missing file
    png_bomb(poster_dir / "6.jpg", 40_000, 40_000)  # decompression bomb named .jpg
    items = items.with_columns(pl.when(pl.col("item_id") == "8").then(None).otherwise(pl.col("image_path"))
                               .alias("image_path"))  # no image at all
    insert_items(cfg, items)
    summary = run_features(cfg, progress=False)
    assert (summary["image"]["embedded"], summary["image"]["failed"]) == (4, 4)
    assert summary["text"]["embedded"] == 8
    failures = {r[0]: r[4] for r in rows(cfg, "feature_failures", "image")}
    assert failures["2"].startswith("unreadable:") and failures["4"].startswith("missing: file not found")
    assert failures["6"].startswith("oversized:") and failures["8"] == "missing: no image_path"
    assert [r[0] for r in rows(cfg, "item_features", "image")] == ["1", "3", "5", "7"]
    # fixed file: the next run embeds it and clears its failure
    (poster_dir / "4.jpg").write_bytes((poster_dir / "1.jpg").read_bytes())
    again = run_features(cfg, progress=False)
    assert (again["image"]["embedded"], again["image"]["failed"]) == (1, 3)
    assert "4" not in {r[0] for r in rows(cfg, "feature_failures", "image")}


def test_removed_items_lose_their_vectors(tiny_cfg, poster_dir: Path) -> None:
    cfg = tiny_cfg()
    insert_items(cfg, catalogue(poster_dir))
    run_features(cfg, progress=False)
    delete_items(cfg, ["2", "7"])
    summary = run_features(cfg, progress=False)
    assert summary["text"]["removed"] == 2 and summary["text"]["embedded"] == 0
    with connect(cfg) as con:
        ids, vec, _ = load_item_vectors(con, "image")
    assert ids == ["1", "3", "4", "5", "6", "8"] and vec.shape == (6, 32) and vec.dtype == np.float32


def test_enriched_field_and_disabled_modality(tiny_cfg, poster_dir: Path) -> None:
    cfg = tiny_cfg("features.image.enabled=false", "features.text.template='{title}. {enriched}'")
    insert_items(cfg, catalogue(poster_dir))
    assert set(run_features(cfg, progress=False)) == {"text"}
    insert_items(cfg, catalogue(poster_dir, 1).with_columns(pl.lit("a robot romance").alias("enriched")))
    assert run_features(cfg, progress=False)["text"]["embedded"] == 1
    with connect(cfg) as con:
        assert load_item_vectors(con, "image") == ([], pytest.approx(np.zeros((0, 0))), None)


def test_empty_catalogue_and_unknown_extractor_fail_clearly(tiny_cfg, poster_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="items table is empty"):
        run_features(tiny_cfg(), progress=False)
    # an unknown extractor name fails when the config loads, before any work, listing the valid names
    with pytest.raises(ValueError, match="features.image.extractor: unknown feature extractor 'clip-magic'; valid: "):
        tiny_cfg("features.image.extractor=clip-magic")


def test_cuda_out_of_memory_halves_the_batch_and_retries(cfg_factory, tiny_bert: Path) -> None:
    """The OOM fallback, driven by an encoder that fails above 2 inputs as a full GPU would."""
    from genre_core.features.text import TextExtractor

    class SmallGpu(TextExtractor):
        def encode(self, inputs):
            if len(inputs) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().encode(inputs)

    cfg = cfg_factory(f"features.text.model={tiny_bert}", "features.text.batch_size=8")
    ext = SmallGpu(cfg.features.text, cfg.features, torch.device("cpu"))
    out = ext.embed(OVERVIEWS)
    assert ext.batch_size == 2 and ext.oom_retries == 2 and out.vectors.shape == (8, 32)
    plain = TextExtractor(cfg.features.text, cfg.features, torch.device("cpu")).embed(OVERVIEWS)
    order = np.argsort(out.positions), np.argsort(plain.positions)
    np.testing.assert_allclose(out.vectors[order[0]], plain.vectors[order[1]], atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checks the GPU path (fp16/bf16 autocast vs CPU fp32)")
@pytest.mark.gpu
def test_gpu_autocast_matches_cpu(cfg_factory, tiny_bert: Path, tiny_vit: Path, poster_dir: Path) -> None:
    from genre_core.features.image import ImageExtractor
    from genre_core.features.text import encode_texts

    cpu, _ = encode_texts(cfg_factory(f"features.text.model={tiny_bert}"), OVERVIEWS)
    for precision in ("fp16", "bf16"):
        gpu, _ = encode_texts(cfg_factory(f"features.text.model={tiny_bert}", "features.device=cuda",
                                          f"features.precision={precision}"), OVERVIEWS)
        assert np.min(np.sum(cpu * gpu, axis=1)) > 0.99  # cosine to the fp32 CPU vectors
    paths = [str(p) for p in sorted(poster_dir.glob("*.jpg"))]
    images = {}
    for device in ("cpu", "cuda"):
        cfg = cfg_factory(f"features.image.model={tiny_vit}", f"features.device={device}", "features.precision=fp16")
        images[device] = ImageExtractor(cfg.features.image, cfg.features, torch.device(device)).embed(paths).vectors
    assert np.min(np.sum(images["cpu"] * images["cuda"], axis=1)) > 0.99


@pytest.mark.slow
def test_real_ml100k_subset_first_and_second_run(cfg_factory) -> None:
    """Real MiniLM + EfficientNet-Lite0 on 40 real items, 2 of them without a poster (ids 330, 387)."""
    ids = [*range(1, 39), 330, 387]
    items = ml100k_items(ids)
    data = shared_dataset("ml-100k-tmdb-posters").parent  # the posters' data dir (paths are confined to it)
    cfg = cfg_factory("features.text.max_length=128", "features.image.num_workers=1", f"data_dir={data}")
    insert_items(cfg, items)
    t0 = time.perf_counter()
    first = run_features(cfg, progress=False)
    first_s = time.perf_counter() - t0
    assert (first["text"]["embedded"], first["text"]["dim"]) == (40, 384)
    assert (first["image"]["embedded"], first["image"]["failed"], first["image"]["dim"]) == (38, 2, 1280)
    t0 = time.perf_counter()
    second = run_features(cfg, progress=False)
    second_s = time.perf_counter() - t0
    assert second["text"]["embedded"] == 0 and second["image"]["embedded"] == 0 and second["image"]["failed"] == 2
    assert second_s < first_s / 5, (first_s, second_s)
    failures = rows(cfg, "feature_failures", "image")
    assert [r[0] for r in failures] == ["330", "387"] and all(r[4].startswith("missing:") for r in failures)


def test_a_new_modality_is_a_registered_class_plus_a_config_section(tiny_cfg, poster_dir: Path) -> None:
    """Pluggability: a 'tags' modality (hashed multi-hot of the categories) needs no change to the pipeline."""
    import zlib

    from genre_core.features.base import Content, FeatureExtractor, sha256_text
    from genre_core.features.config import FeaturesConfig, ModalityConfig
    from genre_core.features.registry import EXTRACTORS

    class TagsConfig(ModalityConfig):
        extractor: str = "test-category-hash"
        dim: int = 16

    class FeaturesWithTags(FeaturesConfig):
        tags: TagsConfig = TagsConfig()

    @EXTRACTORS.register("test-category-hash")
    class CategoryHash(FeatureExtractor):
        model_id = "category-hash-16"

        def prepare(self, items):
            return [Content(r["item_id"], sha256_text(r["category"] or ""), (r["category"] or "").split("|"))
                    for r in items.iter_rows(named=True)]

        def encode(self, inputs):
            out = torch.zeros(len(inputs), self.section.dim)
            for i, tags in enumerate(inputs):
                for t in tags:
                    out[i, zlib.crc32(t.encode()) % self.section.dim] = 1.0
            return out

    try:
        cfg = tiny_cfg("features.text.enabled=false", "features.image.enabled=false")
        cfg.features = FeaturesWithTags(**cfg.features.model_dump())
        insert_items(cfg, catalogue(poster_dir))
        summary = run_features(cfg, progress=False)
        assert set(summary) == {"tags"} and summary["tags"]["embedded"] == 8 and summary["tags"]["dim"] == 16
        with connect(cfg) as con:
            ids, vec, model_id = load_item_vectors(con, "tags")
        assert model_id == "category-hash-16" and np.allclose(vec, vec[0])  # all 8 items share "comedy|crime"
    finally:
        EXTRACTORS.unregister("test-category-hash")
