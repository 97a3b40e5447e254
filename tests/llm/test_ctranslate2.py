"""The ctranslate2 backend on a tiny Llama saved locally: one conversion into the cache, reused; greedy outputs
equal to the transformers backend's at float32; the enrich stage through it, with a time budget."""
from __future__ import annotations

import pytest

from genre_core.llm.backends import LLMRequest, get_backend
from genre_core.llm.config import LLMConfig
from genre_core.llm.pipeline import run_enrich
from genre_core.llm.summary import enrich_rows

pytest.importorskip("ctranslate2")

REQUESTS = [LLMRequest("a", "you write short", "title space robot", 6),
            LLMRequest("b", "you write", "love story in the city", 3)]


def _cfg(model: str, **kw: object) -> LLMConfig:
    return LLMConfig(**{"backend": "ctranslate2", "model": model, "device": "cpu", "cpu_threads": 1, **kw})


def test_converts_once_per_quantization_and_reuses(genre_home, tiny_lm, monkeypatch):
    first = get_backend(_cfg(str(tiny_lm))).generate(REQUESTS)
    assert [r.status for r in first] == ["ok", "ok"], [r.error for r in first]
    assert [len(r.output.split()) for r in first] == [6, 3]  # the tiny model never stops: max_new_tokens holds
    cache = genre_home / "cache" / "llm" / "ct2"
    [folder] = [p for p in cache.iterdir()]
    assert folder.name.startswith("tiny_lm0-int8-") and (folder / "model.bin").is_file()

    import ctranslate2.converters as conv

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("converted again")

    with monkeypatch.context() as m:
        m.setattr(conv, "TransformersConverter", refuse)
        again = get_backend(_cfg(str(tiny_lm))).generate(REQUESTS)
    assert [r.output for r in again] == [r.output for r in first]
    get_backend(_cfg(str(tiny_lm), compute_type="float32")).generate(REQUESTS[:1])
    assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["float32", "int8"]  # no temp folders left


def test_float32_outputs_match_transformers(genre_home, tiny_lm):
    ct2 = get_backend(_cfg(str(tiny_lm), compute_type="float32")).generate(REQUESTS)
    hf = get_backend(LLMConfig(backend="transformers", model=str(tiny_lm), device="cpu")).generate(REQUESTS)
    assert [r.output for r in ct2] == [r.output for r in hf]
    assert [r.tokens for r in ct2] == [r.tokens for r in hf]


def test_unusable_model_is_a_recorded_failure_naming_it(genre_home, tmp_path):
    [res] = get_backend(_cfg(str(tmp_path / "nope"))).generate(REQUESTS[:1])
    assert res.status == "failed" and "nope" in res.error


def test_enrich_through_ctranslate2_with_a_time_budget(warehouse_cfg, tiny_lm):
    llm = warehouse_cfg.llm.model_copy(update={"backend": "ctranslate2", "model": str(tiny_lm), "device": "cpu",
                                               "embed": False, "item_attribute": None, "time_budget_s": 1e-6})
    cfg = warehouse_cfg.model_copy(update={"llm": llm})
    first = run_enrich(cfg, progress=False)  # the budget is spent before the first chunk: everything waits
    assert (first["calls"], first["pending"]) == (0, 6) and "time_budget_s=1e-06" in first["budget_reason"]
    cfg = cfg.model_copy(update={"llm": llm.model_copy(update={"time_budget_s": 600.0})})
    second = run_enrich(cfg, progress=False)
    assert (second["calls"], second["failures"], second["pending"]) == (6, 0, 0)
    assert second["model"].endswith("@ct2-int8")
    third = run_enrich(cfg, progress=False)
    assert (third["calls"], third["cache_hits"]) == (0, 6)
    rows = {r["role"]: r for r in enrich_rows(second)}
    assert rows["total"]["generated"] == 6 and rows["enrich"]["generated"] == 4
    assert {r["role"]: r["cached"] for r in enrich_rows(third)}["total"] == 6
    assert enrich_rows(first)[-1]["skipped (budget)"] == 6


def test_cpu_layout_runs_batches_side_by_side():
    """cpu_threads N -> N one-thread workers by default; ct2_workers splits the threads; one generate call feeds
    every worker a batch."""
    from genre_core.llm.backends.ctranslate2 import CTranslate2Backend
    from genre_core.llm.config import LLMConfig

    def layout(**kw):  # noqa: ANN003, ANN202
        return CTranslate2Backend(LLMConfig(backend="ctranslate2", device="cpu", **kw))

    assert layout(cpu_threads=2).cpu_layout() == (2, 1)
    assert layout(cpu_threads=4, ct2_workers=2).cpu_layout() == (2, 2)
    assert layout(cpu_threads=2, ct2_workers=8).cpu_layout() == (2, 1)  # never more workers than threads
    assert layout().cpu_layout() == (1, 0)  # the engine's own default threads
    assert layout(cpu_threads=2, batch_size=16).chunk_size == 32
