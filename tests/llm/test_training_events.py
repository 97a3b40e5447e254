"""The profilers see only the training part of the train stage's split (``llm.user_history: training``), so no
held-out event reaches a profile; ``all`` shows every interaction."""
from __future__ import annotations

from genre_core.evaluation.split import make_split
from genre_core.events import resolve_rules
from genre_core.llm.pipeline import build_jobs
from genre_core.llm.store import read_user_contexts
from genre_core.llm.training_events import training_interactions
from genre_core.models.loading import read_warehouse, to_index_space
from genre_core.warehouse import connect


def _no_slices(cfg):  # noqa: ANN001, ANN202
    cfg.llm.user_history = "training"  # the default (the shared fixture shows every event)
    cfg.train.split.valid_fraction = 0.0
    cfg.train.split.cold_item_fraction = 0.0
    cfg.train.split.cold_user_fraction = 0.0
    return cfg


def test_training_rows_are_the_splits_training_part(warehouse_cfg):
    cfg = _no_slices(warehouse_cfg)
    frames = read_warehouse(cfg)
    data, events, history = to_index_space(frames, resolve_rules(cfg))
    split = make_split(events, history, data.idmap.n_users, data.idmap.n_items, cfg.train.split, cfg.train.seed)
    rows = training_interactions(cfg)
    assert rows.height == len(split.train) < frames.interactions.height  # something is held out
    held = frames.interactions.join(rows, on=["user_id", "item_id", "ts"], how="anti")
    assert held.height == len(split.test) + len(split.valid)
    # u1's last event (item 1 rated 3 at the latest ts) is held out; u2's last event too
    assert set(zip(held["user_id"], held["item_id"])) >= {("u1", "1"), ("u2", "4")}


def test_profiles_never_show_held_out_events(warehouse_cfg):
    cfg = _no_slices(warehouse_cfg)
    with connect(cfg, read_only=True) as con:
        everything = read_user_contexts(con, cfg.llm).rows_by_key("user_id", named=True, unique=True)
        trained = read_user_contexts(con, cfg.llm, training_interactions(cfg)).rows_by_key(
            "user_id", named=True, unique=True)
    assert everything["u2"]["n_interactions"] == 2 and trained["u2"]["n_interactions"] == 1
    assert "School Friends" in everything["u2"]["all_titles"] and trained["u2"]["all_titles"] == ["Dark Night"]
    assert trained["u1"]["n_interactions"] < everything["u1"]["n_interactions"] == 6

    cfg.llm.roles = ["cold_start"]
    shown = {j.subject_id: j.request.user for j in build_jobs(cfg)}
    # the default: training only (Dark Night, a Thriller); the held-out School Friends is Comedy|Drama
    assert "only 1 interaction(s)" in shown["u2"] and "Thriller" in shown["u2"] and "Comedy" not in shown["u2"]
    cfg.llm.user_history = "all"
    shown_all = {j.subject_id: j.request.user for j in build_jobs(cfg)}
    assert "only 2 interaction(s)" in shown_all["u2"] and "Comedy" in shown_all["u2"]


def test_profilers_and_cold_gen_share_one_split(warehouse_cfg, monkeypatch):
    """build_jobs computes the train stage's split once for both the profilers and the cold-user generator, and
    gives both the same jobs as when each computes it itself."""
    import genre_core.llm.training_events as te
    from genre_core.llm.cold_gen import cold_gen_jobs

    cfg = _no_slices(warehouse_cfg)
    cfg.llm.roles = ["cold_start", "cold_gen"]
    alone = cold_gen_jobs(cfg)
    calls = []
    real = te.training_split
    monkeypatch.setattr(te, "training_split", lambda *a, **k: calls.append(1) or real(*a, **k))
    jobs = build_jobs(cfg)
    assert len(calls) == 1
    assert [j.request.key for j in jobs if j.role == "cold_gen"] == [j.request.key for j in alone] != []
    assert any(j.role == "cold_start" for j in jobs)
