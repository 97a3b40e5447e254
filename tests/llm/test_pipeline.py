"""run_enrich end to end on a small warehouse: cache, budget, failures, crash safety, embeddings."""
from __future__ import annotations

import json

import pytest
from llm_helpers import fill_warehouse, hashing_encoder

from genre_core.config import GenreConfig
from genre_core.llm import pipeline
from genre_core.llm.pipeline import build_jobs, run_enrich
from genre_core.llm.safety import DATA_NOTICE
from genre_core.warehouse import connect


def _http(cfg: GenreConfig, server, **kw: object) -> GenreConfig:
    return cfg.model_copy(update={"llm": cfg.llm.model_copy(update={
        "backend": "openai", "model": "stub", "base_url": server.base_url, **kw})})


def _rows(cfg: GenreConfig, sql: str, params: list | None = None) -> list[tuple]:
    with connect(cfg) as con:
        return con.execute(sql, params or []).fetchall()


def test_skipped_when_disabled_or_backend_none(warehouse_cfg):
    off = warehouse_cfg.model_copy(update={"llm": warehouse_cfg.llm.model_copy(update={"enabled": False})})
    assert run_enrich(off, progress=False)["skipped"] is True
    summary = run_enrich(warehouse_cfg, progress=False)  # enabled, backend none
    assert summary["skipped"] is True and "none" in summary["reason"]


def test_prompts_per_role(warehouse_cfg):
    ordered = build_jobs(warehouse_cfg)
    # roles in llm.roles order; items most interacted-with first (1, 3, 4 twice; 2 once), then by id
    assert [(j.role, j.subject_id) for j in ordered][:4] == [("enrich", "1"), ("enrich", "3"), ("enrich", "4"),
                                                             ("enrich", "2")]
    jobs = {(j.role, j.subject_id): j for j in ordered}
    assert sorted(jobs) == [("cold_start", "u2"), ("enrich", "1"), ("enrich", "2"), ("enrich", "3"),
                            ("enrich", "4"), ("profile", "u1")]  # item 5 has no text, u3 no interactions
    assert jobs[("enrich", "1")].request.user == (
        "Title: <data>Space Robot</data>\nCategory: <data>Action, Sci-Fi</data>\nText: <data>A robot on a space ship.</data>")
    assert jobs[("enrich", "1")].request.system.endswith(DATA_NOTICE)
    # u1 liked (>= 4) items 1, 2, 4 and untitled 5, most recent first; item 3 (rated 2) is not liked
    assert jobs[("profile", "u1")].request.user.startswith(
        "This person liked:\n<data>\n- School Friends\n- Love in the City\n- Space Robot\n</data>\n\nIn one or two sentences")
    assert jobs[("cold_start", "u2")].request.user.startswith(
        "A new user has only 2 interaction(s):\n<data>\n- Dark Night\n</data>\nCategories: <data>Comedy, Drama, Thriller</data>\n\n")


def test_http_run_then_rerun_is_all_cache_hits(warehouse_cfg, stub_server):
    cfg = _http(warehouse_cfg, stub_server)
    first = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (first["calls"], first["cache_hits"], first["failures"], first["pending"]) == (6, 0, 0, 0)
    assert first["roles"]["enrich"]["calls"] == 4 and first["roles"]["cold_start"]["calls"] == 1
    assert first["budget_exhausted"] is False and first["items_per_s"] > 0
    rows = _rows(cfg, "SELECT backend, model, role, status, tokens, prompt FROM llm_outputs ORDER BY role")
    assert len(rows) == 6 and {r[:2] for r in rows} == {("openai", "stub")} and {r[3] for r in rows} == {"ok"}
    assert first["tokens"] == sum(r[4] for r in rows) > 0
    assert json.loads(rows[0][5])["user"].startswith("A new user has only 2 interaction(s)")
    assert first["published"] == {"items.attributes.enriched": {"available": 4, "updated": 4},
                                  "item_features.text_llm": {"available": 4, "embedded": 4, "unchanged": 0, "unparseable": 0},
                                  "user_features.profile": {"available": 2, "embedded": 2, "unchanged": 0}}
    enriched = _rows(cfg, "SELECT json_extract_string(attributes, '$.enriched') FROM items WHERE item_id = '1'")[0][0]
    assert enriched.startswith("An item called Space Robot.") and enriched.endswith("Keywords: space robot, stub.")
    vec = _rows(cfg, "SELECT item_id, model_id, dim, len(vector) FROM item_features WHERE modality = 'text_llm' ORDER BY 1")
    assert vec == [(str(i), "hashing-16", 16, 16) for i in range(1, 5)]
    assert _rows(cfg, "SELECT count(*) FROM user_features WHERE modality = 'profile'") == [(2,)]

    sent = stub_server.total
    second = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (second["calls"], second["cache_hits"], second["failures"]) == (0, 6, 0)
    assert stub_server.total == sent  # nothing reached the server
    assert second["published"]["item_features.text_llm"]["embedded"] == 0
    assert second["published"]["items.attributes.enriched"]["updated"] == 0


def test_changed_input_regenerates_only_what_changed(warehouse_cfg, stub_server):
    cfg = _http(warehouse_cfg, stub_server)
    run_enrich(cfg, progress=False, encoder=hashing_encoder)
    with connect(cfg) as con:
        con.execute("UPDATE items SET title = 'Love in the Dark City' WHERE item_id = '2'")
    again = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    # item 2's own prompt and u1's profile (u1 liked item 2) changed; nothing else
    assert again["calls"] == 2 and again["cache_hits"] == 4
    assert again["roles"]["enrich"]["calls"] == 1 and again["roles"]["profile"]["calls"] == 1
    assert again["published"]["item_features.text_llm"]["embedded"] == 1
    assert again["published"]["user_features.profile"]["embedded"] == 1


def test_budget_stops_cleanly_and_next_run_continues(warehouse_cfg, stub_server):
    cfg = _http(warehouse_cfg, stub_server, max_calls=3)
    first = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert first["calls"] == 3 and first["pending"] == 3 and first["budget_exhausted"] is True
    assert "max_calls=3" in first["budget_reason"]
    assert _rows(cfg, "SELECT count(*) FROM llm_outputs") == [(3,)]
    assert first["published"]["item_features.text_llm"]["available"] == 3  # what exists is embedded
    more = _http(warehouse_cfg, stub_server, max_calls=100)
    second = run_enrich(more, progress=False, encoder=hashing_encoder)
    assert (second["calls"], second["cache_hits"], second["pending"]) == (3, 3, 0)
    assert second["budget_exhausted"] is False


def test_token_budget_is_never_exceeded_with_the_local_backend(warehouse_cfg, tiny_lm):
    cfg = warehouse_cfg.model_copy(update={"llm": warehouse_cfg.llm.model_copy(update={
        "backend": "transformers", "model": str(tiny_lm), "device": "cpu", "max_tokens": 150, "embed": False, "item_attribute": None})})
    summary = run_enrich(cfg, progress=False)
    assert summary["budget_exhausted"] is True and "max_tokens=150" in summary["budget_reason"]
    assert 0 < summary["calls"] < 6 and summary["tokens"] <= 150
    assert summary["tokens"] == _rows(cfg, "SELECT sum(tokens) FROM llm_outputs")[0][0]
    assert summary["published"] == {}


def test_local_backend_pipeline_and_rerun(warehouse_cfg, tiny_lm):
    cfg = warehouse_cfg.model_copy(update={"llm": warehouse_cfg.llm.model_copy(update={
        "backend": "transformers", "model": str(tiny_lm), "device": "cpu"})})
    first = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (first["calls"], first["failures"]) == (6, 0)
    assert _rows(cfg, "SELECT DISTINCT backend, model, status FROM llm_outputs") == [("transformers", str(tiny_lm), "ok")]
    assert first["published"]["item_features.text_llm"]["embedded"] == 4
    second = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (second["calls"], second["cache_hits"]) == (0, 6)


def test_failures_are_recorded_and_retried_next_run(genre_home, stub_server):
    from genre_core.config import load_config

    cfg = load_config(overrides=["llm.enabled=true", "llm.backend=openai", "llm.model=stub",
                                 f"llm.base_url={stub_server.base_url}", "llm.retries=1", "llm.backoff_s=0.01",
                                 "llm.roles=[enrich]"])
    fill_warehouse(cfg, items=[("1", "Fine", "ok", "Drama"), ("2", "BROKEN500", "x", "Drama"),
                               ("3", "BADBODY", "x", "Drama"), ("4", "Also fine", "ok", "Comedy")], ratings=[])
    first = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (first["calls"], first["failures"]) == (4, 2)  # the run went on after the failures
    failed = dict(_rows(cfg, "SELECT subject_id, error FROM llm_outputs WHERE status = 'failed'"))
    assert "HTTP 500" in failed["2"] and failed["3"].startswith("malformed response")
    assert first["published"]["item_features.text_llm"]["available"] == 2
    stub_server.fail_500 = False
    second = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (second["calls"], second["cache_hits"], second["failures"]) == (2, 2, 1)  # BADBODY still malformed


def test_shared_prompt_is_generated_once_and_embedded_for_each_subject(genre_home, stub_server):
    from genre_core.config import load_config

    cfg = load_config(overrides=["llm.enabled=true", "llm.backend=openai", f"llm.base_url={stub_server.base_url}",
                                 "llm.roles=[enrich]"])
    fill_warehouse(cfg, items=[("1", "Twin", "same", "Drama"), ("2", "Twin", "same", "Drama")], ratings=[])
    summary = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert summary["calls"] == 1 and summary["roles"]["enrich"]["subjects"] == 2
    assert _rows(cfg, "SELECT count(*) FROM item_features WHERE modality = 'text_llm'") == [(2,)]


def test_interrupted_run_keeps_completed_work(warehouse_cfg, stub_server, monkeypatch):
    cfg = _http(warehouse_cfg, stub_server, batch_size=1, concurrency=1, write_every=1)
    real = pipeline.get_backend

    def crashing(llm_cfg):
        backend = real(llm_cfg)
        original, calls = backend.generate, []

        def generate(requests):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt  # e.g. the worker is stopped mid-run
            return original(requests)

        backend.generate = generate
        return backend

    monkeypatch.setattr(pipeline, "get_backend", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert _rows(cfg, "SELECT count(*) FROM llm_outputs WHERE status = 'ok'") == [(2,)]
    monkeypatch.setattr(pipeline, "get_backend", real)
    resumed = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (resumed["calls"], resumed["cache_hits"]) == (4, 2)


def test_unreachable_endpoint_stops_the_run_early(warehouse_cfg):
    from genre_core.llm.config import LLMConfig

    llm = warehouse_cfg.llm.model_copy(update={"backend": "openai", "base_url": "http://127.0.0.1:9/v1",
                                               "retries": 0, "batch_size": 1, "concurrency": 1,
                                               "max_consecutive_failures": 2})
    cfg = warehouse_cfg.model_copy(update={"llm": LLMConfig.model_validate(llm.model_dump())})
    summary = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (summary["calls"], summary["failures"], summary["pending"]) == (2, 2, 4)
    assert summary["aborted"].startswith("2 generations failed in a row (last: connection error")
    assert summary["budget_exhausted"] is False
    assert _rows(cfg, "SELECT count(*) FROM llm_outputs WHERE status = 'failed'") == [(2,)]
