"""Explanations: generated for the top N of each user by the recommend stage, grounded in the because-item and
the profile, cached in llm_outputs, published beside the recommendations, republished from the cache."""
from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from genre_core.llm.explain import first_sentence
from genre_core.paths import serving_path
from genre_core.recommend.pipeline import recommend_with_model
from genre_core.warehouse import connect
from tests.recommend.conftest import make_world


def _serving(cfg, sql: str) -> pl.DataFrame:  # noqa: ANN001
    con = duckdb.connect(str(serving_path(cfg)), read_only=True)
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def _run(world) -> dict:  # noqa: ANN001
    return recommend_with_model(world.cfg, world.model, model_name="tiny", model_version="3", model_run_id="abc",
                                progress=False)


def test_first_sentence():
    assert first_sentence("**Explanation:** You liked Alien, so this space horror fits. Also more text.") == \
        "You liked Alien, so this space horror fits."
    assert first_sentence("  \n ") == ""


def test_explanations_published_and_republished_from_cache(genre_home, stub_server):
    world = make_world(genre_home)
    off = _run(world)  # LLM off: the table exists and is empty
    assert off["explanations"]["skipped"] is True
    assert _serving(world.cfg, "SELECT count(*) AS n FROM explanations")["n"][0] == 0

    world.cfg = world.cfg.model_copy(update={"llm": world.cfg.llm.model_copy(update={
        "enabled": True, "backend": "openai", "model": "stub", "base_url": stub_server.base_url,
        "backoff_s": 0.01, "max_calls": 1000})})
    with connect(world.cfg) as con:  # u5 has a profile written by the enrich stage (same backend and model)
        con.execute("""INSERT INTO llm_outputs VALUES ('openai', 'stub', 'h-u5', 'profile', 'u5', '{}',
                       'Loves quiet space dramas.', 'ok', NULL, 10, now())""")
    first = _run(world)
    ex = first["explanations"]
    recs = _serving(world.cfg, "SELECT * FROM recommendations WHERE rank <= 3 ORDER BY user_id, rank")
    expl = _serving(world.cfg, "SELECT * FROM explanations ORDER BY user_id, rank")
    assert ex["rows"] == recs.height and ex["explained"] == expl.height == recs.height and ex["failures"] == 0
    # cold users share the popularity list: the same prompt is generated once and shared
    assert ex["calls"] == ex["prompts"] - ex["cache_hits"] > 0 and stub_server.total == ex["calls"]
    joined = recs.join(expl, on=["user_id", "rank"], suffix="_e")
    assert joined.height == recs.height
    assert (joined["item_id"] == joined["item_id_e"]).all()
    assert joined["because_item_id"].eq_missing(joined["because_item_id_e"]).all()
    assert set(expl["run_id"].to_list()) == {first["run_id"]} and set(expl["model_version"].to_list()) == {"3"}
    assert expl["explanation"].str.len_chars().min() > 0 and set(expl["llm_model"].to_list()) == {"stub"}

    with connect(world.cfg) as con:
        prompts = con.execute("SELECT subject_id, prompt FROM llm_outputs WHERE role = 'explain'").fetchall()
    by_subject = {s: json.loads(p)["user"] for s, p in prompts}
    row = recs.filter(pl.col("user_id") == "u5").row(0, named=True)
    prompt = by_subject[f"u5/{row['item_id']}"]
    # every data field is fenced (genre_core.llm.safety), as in the enrich stage's prompts
    assert "Their taste: <data>Loves quiet space dramas.</data>" in prompt
    assert f"We recommend: <data>{row['item_id']}</data> (<data>unknown</data>)" in prompt
    if row["because_item_id"] is not None:  # items are titled with their id in this world
        assert f"The user liked: <data>{row['because_item_id']}</data>\n" in prompt
    assert "Their taste: <data>unknown</data>" in by_subject[next(s for s in by_subject if s.startswith("u6/"))]

    # the README's query, through `genre sql` (warehouse items joined with the serving file)
    from genre_core.sql import query

    cols, got = query(world.cfg, """SELECT r.rank, i.title, e.explanation FROM recommendations r JOIN items i USING (item_id)
                                    LEFT JOIN explanations e ON e.user_id = r.user_id AND e.rank = r.rank
                                    AND e.run_id = r.run_id WHERE r.user_id = 'u5' ORDER BY r.rank""")
    assert cols == ["rank", "title", "explanation"] and len(got) == world.cfg.recommend.k
    assert all(e for _, _, e in got[:3]) and all(e is None for _, _, e in got[3:])

    calls_before = stub_server.total
    again = _run(world)
    assert (again["explanations"]["calls"], stub_server.total) == (0, calls_before)
    assert again["explanations"]["cache_hits"] == ex["prompts"]
    republished = _serving(world.cfg, "SELECT * FROM explanations ORDER BY user_id, rank")
    assert republished["explanation"].to_list() == expl["explanation"].to_list()
    assert set(republished["run_id"].to_list()) == {again["run_id"]} != {first["run_id"]}


def test_budget_leaves_the_rest_for_the_next_run(genre_home, stub_server):
    world = make_world(genre_home, n_users=6)
    world.cfg = world.cfg.model_copy(update={"llm": world.cfg.llm.model_copy(update={
        "enabled": True, "backend": "openai", "model": "stub", "base_url": stub_server.base_url,
        "max_calls": 4, "batch_size": 2, "explain_top_n": 2})})
    first = _run(world)["explanations"]
    assert first["calls"] == 4 and first["pending"] == first["prompts"] - 4 > 0
    assert first["budget_reason"] == "max_calls=4 reached" and 4 <= first["explained"] < first["rows"]
    second = _run(world)["explanations"]
    assert second["cache_hits"] == 4 and second["calls"] == min(4, first["prompts"] - 4)
    assert second["explained"] > first["explained"]


def test_publish_refuses_an_explanations_frame_without_its_columns(tmp_path):
    from tests.recommend.conftest import run_record, synthetic_recs

    from genre_core.recommend.publish import publish

    bad = pl.DataFrame({"user_id": ["u00000"], "rank": [1], "item_id": ["i1"], "explanation": ["x"]})
    with pytest.raises(ValueError, match=r"explanations frame lacks columns \['because_item_id', 'llm_backend', 'llm_model'\]"):
        publish(tmp_path / "serving.duckdb", synthetic_recs(2, 3, 0), run_record("r1", 2, 3), explanations=bad)
    assert not (tmp_path / "serving.duckdb").exists()


def test_unreachable_llm_server_does_not_block_publishing(genre_home):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world = make_world(genre_home, n_users=6)
    world.cfg = world.cfg.model_copy(update={"llm": world.cfg.llm.model_copy(update={
        "enabled": True, "backend": "openai", "model": "stub", "base_url": f"http://127.0.0.1:{port}/v1",
        "retries": 0, "max_consecutive_failures": 4, "timeout_s": 2})})
    out = _run(world)
    ex = out["explanations"]
    assert ex["explained"] == 0 and ex["failures"] >= 4 and "failed in a row" in ex["aborted"]
    assert _serving(world.cfg, "SELECT count(*) AS n FROM recommendations")["n"][0] == out["rows"] > 0
    assert _serving(world.cfg, "SELECT count(*) AS n FROM explanations")["n"][0] == 0
