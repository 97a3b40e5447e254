"""The cold-user generator: cold users from the training split, prompts from training events only, vectors
stored as user_features 'cold_gen', cache reuse; on MovieLens 100K's real cold-user slice with the HTTP stub."""
from __future__ import annotations

import numpy as np
import pytest
from llm_helpers import hashing_encoder

from genre_core.config import GenreConfig, load_config
from genre_core.evaluation.split import make_split
from genre_core.events import resolve_rules
from genre_core.llm.cold_gen import cold_gen_jobs, parse_generated_items
from genre_core.llm.pipeline import run_enrich
from genre_core.models.loading import read_warehouse, to_index_space
from genre_core.warehouse import connect
from tests.models.test_models_ml100k import load_ml100k


def test_parse_generated_items():
    answer = ("Here are ideas:\n1. **Alien** - a crew meets a creature in space\n- Blade Runner: a detective and "
              "robots\n\n* 3) Title: Heat\n- Blade Runner: a detective and robots\n4. Extra one")
    assert parse_generated_items(answer, 3) == ["Here are ideas", "Alien - a crew meets a creature in space",
                                                "Blade Runner: a detective and robots"]
    assert parse_generated_items("Title: Heat", 3) == ["Heat"]
    with pytest.raises(ValueError, match="no item description"):
        parse_generated_items(" - \n**\n", 3)


def test_cold_users_are_those_with_few_training_events(warehouse_cfg):
    """u2 has 2 events: the split holds out its last one, so its prompt shows only the first (Dark Night)."""
    cfg = warehouse_cfg.model_copy(update={"llm": warehouse_cfg.llm.model_copy(update={"roles": ["cold_gen"]})})
    cfg.train.split.valid_fraction = 0.0
    cfg.train.split.cold_item_fraction = 0.0
    cfg.train.split.cold_user_fraction = 0.0
    jobs = {j.subject_id: j for j in cold_gen_jobs(cfg)}
    assert sorted(jobs) == ["u2"]  # u1 has 6 events (5 in training): not cold at threshold 5
    user = jobs["u2"].request.user
    assert user.startswith("A new user has only 1 interaction(s):\n<data>\n- Dark Night\n</data>\n") and "School Friends" not in user
    assert "Describe 3 other items" in user


def _ml100k_cfg(server) -> GenreConfig:  # noqa: ANN001
    return load_config(None, ["llm.enabled=true", "llm.backend=openai", "llm.model=stub",
                              f"llm.base_url={server.base_url}", "llm.roles=[cold_gen]", "llm.backoff_s=0.01",
                              "llm.max_calls=1000", "llm.concurrency=8"])


@pytest.mark.slow
def test_ml100k_cold_user_slice_gets_generated_vectors(genre_home, ml100k, stub_server):
    cfg = _ml100k_cfg(stub_server)
    load_ml100k(cfg, ml100k)
    frames = read_warehouse(cfg)
    data, events, history = to_index_space(frames, cfg.train.split.min_positive_value)
    split = make_split(events, history, data.idmap.n_users, data.idmap.n_items, cfg.train.split, cfg.train.seed)
    slice_users = {data.idmap.users[u] for u in split.cold_users}
    assert len(slice_users) == 47  # 5% of 943 users keep 3 training events each

    first = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    role = first["roles"]["cold_gen"]
    assert (role["subjects"], role["failures"], role["pending"]) == (47, 0, 0)
    assert first["calls"] == role["prompts"] >= 45  # users with the very same 3 movies share one prompt
    assert first["published"]["user_features.cold_gen"] == {"available": 47, "embedded": 47, "unchanged": 0,
                                                             "unparseable": 0, "removed": 0}
    with connect(cfg) as con:
        prompts = dict(con.execute("SELECT subject_id, prompt FROM llm_outputs WHERE role = 'cold_gen'").fetchall())
        stored = con.execute("SELECT user_id, dim, vector FROM user_features WHERE modality = 'cold_gen'").fetchall()
    assert set(prompts) <= slice_users and {r[0] for r in stored} == slice_users
    assert all("only 3 interaction(s)" in p for p in prompts.values())
    assert {r[1] for r in stored} == {16} and np.allclose([np.linalg.norm(r[2]) for r in stored], 1.0, atol=1e-5)
    # the prompt shows the user's 3 training movies and none of the held-out ones
    u = split.cold_users[0]
    held = {frames_title for frames_title in _titles(cfg, [data.idmap.items[i] for i in
                                                         split.test_cold_user.item[split.test_cold_user.user == u]])}
    trained = _titles(cfg, [data.idmap.items[i] for i in split.train.item[split.train.user == u]])
    prompt = prompts[data.idmap.users[u]]
    assert len(trained) == 3 and all(t in prompt for t in trained)
    assert not any(f"- {t}\n" in prompt for t in held - set(trained))

    again = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert (again["calls"], again["cache_hits"]) == (0, role["prompts"])
    assert again["published"]["user_features.cold_gen"]["embedded"] == 0

    # with a lower threshold nobody is cold any more: the stale vectors go
    cfg.llm.cold_start_threshold = 3
    gone = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    assert gone["calls"] == 0 and gone["published"]["user_features.cold_gen"]["removed"] == 47
    with connect(cfg) as con:
        assert con.execute("SELECT count(*) FROM user_features WHERE modality = 'cold_gen'").fetchall()[0][0] == 0


def _titles(cfg: GenreConfig, ids: list[str]) -> set[str]:
    with connect(cfg) as con:
        return {r[0] for r in con.execute("SELECT title FROM items WHERE list_contains(?, item_id)", [ids]).fetchall()}


@pytest.mark.slow
def test_mind_sample_naturally_cold_users(genre_home, stub_server):
    """MIND sample through the real ingest: users with few clicks are cold without any held-out slice; every
    generated user has 1 .. threshold-1 training events and the prompt says how many."""
    from genre_core.ingest.pipeline import run_ingest
    from tests.conftest import shared_dataset

    shared_dataset("mind-small-sample")
    cfg = load_config("conf/mind.yaml", ["llm.enabled=true", "llm.backend=openai", "llm.model=stub",
                                         f"llm.base_url={stub_server.base_url}", "llm.roles=[cold_gen]",
                                         "llm.backoff_s=0.01", "llm.max_calls=60", "llm.concurrency=8"])
    run_ingest(cfg, progress=False)
    frames = read_warehouse(cfg)
    data, events, history = to_index_space(frames, resolve_rules(cfg))  # the train stage's rules, hence its split
    split = make_split(events, history, data.idmap.n_users, data.idmap.n_items, cfg.train.split, cfg.train.seed)
    counts = np.bincount(split.train.user, minlength=data.idmap.n_users)
    expected = {data.idmap.users[u] for u in np.flatnonzero((counts >= 1) & (counts < cfg.llm.cold_start_threshold))}
    slice_users = {data.idmap.users[u] for u in split.cold_users}
    assert len(expected - slice_users) > 0  # naturally cold users, not only the split's slice

    summary = run_enrich(cfg, progress=False, encoder=hashing_encoder)
    role = summary["roles"]["cold_gen"]
    # hundreds of cold users: the budget (60 calls) takes the first ones, the rest wait for the next run
    assert (role["calls"], role["failures"]) == (60, 0) and role["pending"] == role["prompts"] - 60 > 0
    with connect(cfg) as con:
        rows = con.execute("SELECT subject_id, prompt FROM llm_outputs WHERE role = 'cold_gen'").fetchall()
        stored = {r[0] for r in con.execute("SELECT user_id FROM user_features WHERE modality = 'cold_gen'").fetchall()}
    assert {s for s, _ in rows} <= expected and stored <= expected
    assert len(stored) == summary["published"]["user_features.cold_gen"]["available"] > 0
    for subject, prompt in rows:
        n = int(counts[data.idmap.user_index[subject]])
        assert f"only {n} interaction(s)" in prompt


def test_cold_gen_and_explain_prompts_are_checked_at_load():
    from genre_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"cold_gen.user: unknown placeholder\(s\) \['because_title'\]"):
        load_config(None, ["llm.prompts.cold_gen.user='{titles} {because_title}'"])
    with pytest.raises(ConfigError, match=r"explain.user: unknown placeholder\(s\) \['titles'\]"):
        load_config(None, ["llm.prompts.explain.user='{title} {titles}'"])
    cfg = load_config(None, ["llm.prompts.explain.user='Why {title} after {because_title}?'"])
    assert cfg.llm.prompt("explain").system == "You explain recommendations to a user in one short, friendly sentence."
