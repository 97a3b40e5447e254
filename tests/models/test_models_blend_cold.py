"""The blend's cold weights: fitted on validation users cut to their first events, used for short histories only.

The world (index space, known answers): items 0-9 are group A's, 10-19 group B's, 20-29 "starter" items. Three
users in four are in group A. Every user first takes 3 random starter items, then group items in random order.
Starter items' text points the way of group B, group items' text the way of their group. So from the starters
alone the content model guesses group B (wrong for most users) and popularity (group A first) is the better
answer; from a whole history the content model finds the user's group and popularity fails group B.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_core.models.base import IdMap, Recommender
from genre_core.models.blend import Blend, truncate_histories, zscore
from genre_core.models.config import BlendConfig, ContentConfig
from genre_core.models.data import Interactions, TrainData
from genre_core.models.registry import MODELS

N_WARM, N_SHORT, N_ITEMS = 120, 8, 30
T0 = 1_600_000_000


def starter_world(seed: int = 0) -> TrainData:
    """N_WARM users with 3 starters + 7 group items; N_SHORT more users with 3 starters + 1 group item."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(N_WARM + N_SHORT):
        group = 0 if u % 4 else 1  # 1 in 4 users is in group B
        n_group = 7 if u < N_WARM else 1
        seq = [*rng.choice(np.arange(20, 30), 3, replace=False), *(10 * group + rng.permutation(10)[:n_group])]
        users += [u] * len(seq)
        items += [int(i) for i in seq]
    n = len(users)
    ev = Interactions(np.array(users, np.int64), np.array(items, np.int64), np.full(n, np.nan, np.float32),
                      T0 + 3600 * np.arange(n, dtype=np.int64), np.ones(n, bool))
    text = np.zeros((N_ITEMS, 4), np.float32)
    text[:10, 0], text[10:, 1] = 1.0, 1.0  # group A: axis 0; group B and the starters: axis 1
    text += 0.05 * rng.standard_normal(text.shape).astype(np.float32)
    idmap = IdMap([f"u{u}" for u in range(N_WARM + N_SHORT)], [f"i{i}" for i in range(N_ITEMS)])
    return TrainData(idmap, ev, {"text": text}, {"text": np.ones(N_ITEMS, bool)})


def build(idmap: IdMap):  # noqa: ANN201
    configs = {"content": ContentConfig(modalities=["text"], recency_half_life=None)}
    return lambda name: MODELS.get(name)(idmap, configs.get(name), seed=0)


def fit_blend(data: TrainData, **cfg: object) -> Blend:
    blend = Blend(data.idmap, BlendConfig(members=["content", "popularity"], **cfg), seed=3)
    blend.fit(data, build=build(data.idmap))  # no validation given: each user's last event validates
    return blend


@pytest.fixture(scope="module")
def data() -> TrainData:
    return starter_world()


@pytest.fixture(scope="module")
def blend(data: TrainData) -> Blend:
    return fit_blend(data)


def by_weights(blend: Blend, users: torch.Tensor, weights: dict[str, float]) -> torch.Tensor:
    """sum_m w_m zscore(member_m(users)): the blend's score recomputed from the members."""
    return sum(w * zscore(blend.members[n].score(users)) for n, w in weights.items())


def test_truncate_histories_keeps_each_users_first_events() -> None:
    ptr, ind = truncate_histories(np.array([0, 4, 4, 6]), np.array([7, 8, 9, 10, 11, 12]), 3)
    assert ptr.tolist() == [0, 3, 3, 5] and ind.tolist() == [7, 8, 9, 11, 12]


def test_cold_weights_favour_popularity_for_short_histories(blend: Blend) -> None:
    w, cw = blend.weights, blend.cold_weights
    assert set(cw) == {"content", "popularity"} and abs(sum(cw.values()) - 1.0) < 1e-9
    assert cw["popularity"] > 0 and w["popularity"] < cw["popularity"], (w, cw)
    assert w["content"] > 0.5  # whole histories: the personal model leads
    metric = blend.config.metric
    assert blend.valid_metrics[metric] > 0.3 and 0 < blend.valid_metrics[f"cold_{metric}"] < 1
    # the members were refitted on everything, with the whole histories back (the cut was only for the search)
    for member in blend.members.values():
        assert torch.equal(member.hist_indptr, blend.hist_indptr) and torch.equal(member.hist_indices,
                                                                                  blend.hist_indices)


def test_score_uses_the_cold_weights_for_short_histories_only(blend: Blend) -> None:
    lengths = (blend.hist_indptr[1:] - blend.hist_indptr[:-1]).numpy()
    short = np.flatnonzero(lengths <= blend.config.cold_max_history)
    assert short.tolist() == list(range(N_WARM, N_WARM + N_SHORT))  # 4 events each, the others 10
    users = torch.tensor([0, 1, 2, 3, *short.tolist()])  # warm ones and short ones in one batch
    got = blend.score(users)
    is_short = torch.isin(users, torch.as_tensor(short))
    want = torch.where(is_short[:, None], by_weights(blend, users, blend.cold_weights),
                       by_weights(blend, users, blend.weights))
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got[is_short], by_weights(blend, users[is_short], blend.weights), atol=1e-3)
    # what it means here: short histories get group A's items (popularity), not the starters' group B
    top, _ = blend.recommend(torch.as_tensor(short), k=1)
    assert (top[:, 0] < 10).all()


def test_cold_weights_can_be_switched_off(data: TrainData) -> None:
    off = fit_blend(data, cold_max_history=0)
    assert off.cold_weights == {} and set(off.valid_metrics) == {off.config.metric}
    users = torch.arange(N_WARM + N_SHORT)
    assert torch.allclose(off.score(users), by_weights(off, users, off.weights), atol=1e-5)


def test_save_and_load_keep_both_weight_vectors(blend: Blend, tmp_path: Path) -> None:
    blend.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, Blend)
    assert loaded.weights == blend.weights and loaded.cold_weights == blend.cold_weights
    assert loaded.valid_metrics == blend.valid_metrics and loaded.config == blend.config
    users = torch.arange(N_WARM + N_SHORT)
    assert torch.allclose(loaded.score(users), blend.score(users), atol=1e-5)


def test_a_blend_saved_before_cold_weights_still_loads(blend: Blend, tmp_path: Path) -> None:
    blend.save(tmp_path / "old")
    info = json.loads((tmp_path / "old" / "model.json").read_text())
    for key in ("cold_weights", "valid_metrics"):
        del info["meta"][key]
    for key in ("cold_max_history", "cold_history"):
        del info["params"][key]
    (tmp_path / "old" / "model.json").write_text(json.dumps(info))
    loaded = Recommender.load(tmp_path / "old")
    assert loaded.cold_weights == {} and loaded.weights == blend.weights
    users = torch.arange(N_WARM + N_SHORT)  # every user, short histories included, gets the warm weights
    assert torch.allclose(loaded.score(users), by_weights(blend, users, blend.weights), atol=1e-5)


def test_blend_fit_never_reads_the_test_split(world) -> None:  # noqa: ANN001 - tests.models.conftest fixture
    """The train stage's blend path: replacing every test target changes no weight and no validation number."""
    from genre_core.config import load_config
    from genre_core.evaluation.evaluate import make_eval_set
    from genre_core.evaluation.split import make_split
    from genre_core.models.pipeline import Prepared, fit_and_evaluate
    from tests.models.conftest import FAST
    from tests.models.model_data import N_ITEMS as W_ITEMS
    from tests.models.model_data import N_USERS

    cfg = load_config(None, [*FAST, "train.blend.members=[popularity,itemknn]", "train.blend.step=0.25"])
    split = make_split(world.events, world.history, N_USERS, W_ITEMS, cfg.train.split, cfg.train.seed)
    t = split.test
    moved = Interactions(t.user, (t.item + 7) % W_ITEMS, t.value, t.ts, t.positive, t.negative, t.weight)
    outcomes = []
    for test in (t, moved):  # the real test targets, then every one on another item
        sets = {"valid": make_eval_set("valid", split.valid), "test": make_eval_set("test", test),
                "cold_item": make_eval_set("cold_item", split.test_cold_item, candidates=split.cold_items),
                "cold_user": make_eval_set("cold_user", split.test_cold_user)}
        prep = Prepared(data=world.data(), split=split, eval_sets=sets, fingerprint="test")
        model, metrics, _ = fit_and_evaluate("blend", cfg, prep, torch.device("cpu"))
        outcomes.append((model.weights, model.cold_weights, metrics["fit"]))
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0][2]) == {"valid", "weights", "cold_weights", "reused"}


def test_item_vectors_mix_the_members_vectors_by_weight(blend: Blend) -> None:
    """Only content has item vectors here: the blend's are its rows normalised (similar items and the because
    item of explanations then work with a blend champion); weights scale each member's block."""
    vec = blend.item_vectors()
    content = torch.nn.functional.normalize(blend.members["content"].item_vectors().float(), dim=1)
    assert vec is not None and vec.shape == content.shape
    share = blend.weights["content"] if blend.weights["content"] > 0 else 1.0
    assert torch.allclose(vec, content * share ** 0.5, atol=1e-6)
    sims = torch.nn.functional.normalize(vec, dim=1) @ torch.nn.functional.normalize(vec, dim=1).T
    assert sims[0, 1] > sims[0, 15]  # items of the same group are closer than across groups


def test_a_mix_must_beat_the_best_single_member_by_min_gain() -> None:
    """Member a finds users 0-2's item, member b user 3's: the 50/50 mix finds all four (NDCG@10 1.0 against a's
    0.75). With min_gain 0 the mix wins; with a margin the mix cannot reach (0.75 * 1.5 > 1.0), a alone does."""
    from genre_core.ranking import CSR

    n_users, n_items = 4, 30
    target = np.array([25, 26, 27, 28])
    za, zb = torch.zeros(n_users, n_items), torch.zeros(n_users, n_items)
    za[np.arange(3), target[:3]] = 5.0  # a: right for users 0-2; for user 3, 12 other items first
    za[3, 10:22] = 1.0
    zb[3, target[3]] = 5.0  # b: right for user 3 only; for users 0-2, 12 other items first
    zb[:3, 0:12] = 1.0
    relevant = np.zeros((n_users, n_items), dtype=bool)
    relevant[np.arange(n_users), target] = True
    seen = CSR(indptr=np.zeros(n_users + 1, dtype=np.int64), indices=np.zeros(0, dtype=np.int64))
    idmap = IdMap([f"u{u}" for u in range(n_users)], [f"i{i}" for i in range(n_items)])
    zs = {"a": za.half(), "b": zb.half()}
    mix, v_mix = Blend(idmap, BlendConfig(members=["content", "popularity"], step=0.5, min_gain=0.0,
                                          min_confidence=0.0))._search(["a", "b"], zs, relevant, seen)
    assert mix == {"a": 0.5, "b": 0.5} and v_mix == pytest.approx(1.0)
    solo, v_solo = Blend(idmap, BlendConfig(members=["content", "popularity"], step=0.5, min_gain=0.5))._search(
        ["a", "b"], zs, relevant, seen)
    assert solo == {"a": 1.0, "b": 0.0} and v_solo == pytest.approx(0.75)


def _two_members(n_users: int, b_right: int) -> tuple:
    """Member a ranks the relevant item first for all users but the last ``b_right``, b for those only (else
    12 other items first): the 50/50 mix finds every user's item."""
    from genre_core.ranking import CSR

    n_items = 60
    target = 40 + np.arange(n_users) % 20
    za, zb = torch.zeros(n_users, n_items), torch.zeros(n_users, n_items)
    a_rows, b_rows = np.arange(n_users - b_right), np.arange(n_users - b_right, n_users)
    za[a_rows, target[a_rows]] = 5.0
    za[b_rows, 10:22] = 1.0
    zb[b_rows, target[b_rows]] = 5.0
    zb[a_rows, 0:12] = 1.0
    relevant = np.zeros((n_users, n_items), dtype=bool)
    relevant[np.arange(n_users), target] = True
    seen = CSR(indptr=np.zeros(n_users + 1, dtype=np.int64), indices=np.zeros(0, dtype=np.int64))
    idmap = IdMap([f"u{u}" for u in range(n_users)], [f"i{i}" for i in range(n_items)])
    return idmap, {"a": za.half(), "b": zb.half()}, relevant, seen


@pytest.mark.parametrize(("b_right", "confidence", "mixed"), [(2, 0.95, False), (2, 0.8, True), (10, 0.95, True)])
def test_a_mix_must_beat_the_best_single_member_with_confidence(b_right, confidence, mixed) -> None:
    """40 validation users; the mix gains on the ``b_right`` users that only b finds (+5% for 2 users, +33% for
    10): both clear min_gain. A gain carried by 2 of 40 users vanishes in about (38/40)^40 = 13% of bootstrap
    resamples, under a 95% confidence bar and over an 80% one; a gain carried by 10 users is sure."""
    from genre_core.models.blend import paired_confidence

    idmap, zs, relevant, seen = _two_members(40, b_right)
    cfg = BlendConfig(members=["content", "popularity"], step=0.5, min_gain=0.01, min_confidence=confidence)
    weights, _ = Blend(idmap, cfg)._search(["a", "b"], zs, relevant, seen)
    assert weights == ({"a": 0.5, "b": 0.5} if mixed else {"a": 1.0, "b": 0.0})
    sure = paired_confidence(np.r_[np.zeros(40 - b_right), np.ones(b_right)], seed=42)
    assert (0.8 < sure < 0.95) if b_right == 2 else sure == 1.0
    assert paired_confidence(np.zeros(5), seed=1) == 0.0 and paired_confidence(np.zeros(0), seed=1) == 0.0
