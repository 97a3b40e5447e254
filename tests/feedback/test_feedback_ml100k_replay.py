"""Replay MovieLens 100K in time slices through ``nightly`` (direct) and check the feedback table by hand.

u.data is sorted by time and cut at 60% / 80% / 100%; night n ingests the first n slices as a growing file (a
copy under tmp, never in the repo), scores the list published the night before, retrains and publishes. The
feedback of run n is recomputed here from the published table and the rows of slice n + 1 with plain sets.
"""
from __future__ import annotations

import math
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from genre_core.config import load_config
from genre_core.paths import serving_path
from genre_core.pipeline import run_nightly
from genre_core.warehouse import connect

CUTS = (0.6, 0.8, 1.0)
FAST = ["dataset.tmdb_path=null", "dataset.fetch_if_missing=false", "features.text.enabled=false",
        "features.image.enabled=false", "train.models=[itemknn]", "train.register_model=itemknn",
        "train.split.cold_item_fraction=0", "train.split.cold_user_fraction=0", "train.split.valid_fraction=0",
        "recommend.similar_items=false", "recommend.k=10", "feedback.k_values=[5,10]"]


def _hand(lists: dict[str, list[str]], new: list[tuple[str, str]], before: list[tuple[str, str]], k: int,
          n_items: int) -> dict[str, float]:
    """Plain-Python feedback of one run at k (every rating is a positive under the default events)."""
    seen = set(before)
    fresh: dict[str, set[str]] = defaultdict(set)
    for u, i in new:
        if u in lists and (u, i) not in seen:
            fresh[u].add(i)
    hits = {u: len(set(lists[u][:k]) & items) for u, items in fresh.items()}
    n_users = len({u for u, _ in before})
    pop: dict[str, set[str]] = defaultdict(set)
    for u, i in before:
        pop[i].add(u)
    shown = [(u, i) for u, items in lists.items() for i in items[:k]]
    return {
        "users_active": len({u for u, _ in new} & set(lists)),
        "users_evaluated": len(fresh),
        "hit_rate": sum(h > 0 for h in hits.values()) / len(hits),
        "precision": sum(h / k for h in hits.values()) / len(hits),
        "recall": sum(hits[u] / len(fresh[u]) for u in hits) / len(hits),
        "coverage": len({i for _, i in shown}) / n_items,
        "novelty": sum(-math.log2((len(pop[i]) + 1) / (n_users + 1)) for _, i in shown) / len(shown),
    }


@pytest.mark.slow
def test_ml100k_replay_feedback_matches_hand_computation(ml100k: Path, tmp_path: Path, genre_home: Path) -> None:
    data = tmp_path / "data" / "ml-100k"
    data.mkdir(parents=True)
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copy(ml100k / name, data / name)
    rows = sorted((ml100k / "u.data").read_text().splitlines(), key=lambda ln: (int(ln.split("\t")[3]), ln))
    cuts = [int(c * len(rows)) for c in CUTS]
    n_items = len((ml100k / "u.item").read_text(encoding="latin-1").splitlines())
    cfg = load_config(None, [f"data_dir={tmp_path / 'data'}", *FAST])
    published: list[dict[str, list[str]]] = []
    for night, cut in enumerate(cuts):
        (data / "u.data").write_text("\n".join(rows[:cut]) + "\n")
        out = run_nightly(cfg, progress=False)
        fb = out["stages"]["feedback"]
        assert len(fb["rows"]) == (0 if night == 0 else 2), fb  # k = 5 and 10 for the previous night's run
        con = duckdb.connect(str(serving_path(cfg)), read_only=True)
        run_id, version = con.sql("SELECT run_id, model_version FROM recommendation_runs "
                                  "ORDER BY finished_at DESC LIMIT 1").fetchall()[0]
        lists: dict[str, list[str]] = defaultdict(list)
        for u, i in con.sql("SELECT user_id, item_id FROM recommendations ORDER BY user_id, rank").fetchall():
            lists[u].append(i)
        con.close()
        published.append({"run_id": run_id, "version": version, "lists": dict(lists)})

    with connect(cfg, read_only=True) as con:
        table = {(r[0], r[1]): r for r in con.sql(
            """SELECT run_id, k, users_shown, users_active, users_evaluated, hit_rate, precision, recall, coverage,
                      novelty, model_version, window_start, window_end FROM feedback""").fetchall()}
    assert len(table) == 4  # runs of night 1 and 2, at k = 5 and 10
    pairs = [(ln.split("\t")[0], ln.split("\t")[1]) for ln in rows]
    for night in (0, 1):
        run = published[night]
        before, new = pairs[: cuts[night]], pairs[cuts[night]: cuts[night + 1]]
        for k in (5, 10):
            got = table[run["run_id"], k]
            want = _hand(run["lists"], new, before, k, n_items)
            assert got[2] == len(run["lists"]) == 943
            assert (got[3], got[4]) == (want["users_active"], want["users_evaluated"])
            for j, key in enumerate(("hit_rate", "precision", "recall", "coverage", "novelty"), start=5):
                assert got[j] == pytest.approx(want[key], rel=1e-9), (night, k, key)
            assert got[10] == run["version"]  # the champion version that published the lists
    assert table[published[0]["run_id"], 10][5] > 0.0  # the lists do hit what users rated next
