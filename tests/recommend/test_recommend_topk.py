"""Blocked top-K against brute force on small random data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genre_core.device import block_rows
from genre_core.ranking import CSR, topk_blocked
from genre_core.recommend.topk import because_items, similar_items


def _random_seen(rng: np.random.Generator, n: int, n_items: int, max_seen: int) -> tuple[CSR, list[set[int]]]:
    sets = [set(rng.choice(n_items, size=rng.integers(0, max_seen + 1), replace=False).tolist()) for _ in range(n)]
    rows = np.repeat(np.arange(n), [len(s) for s in sets])
    cols = np.array([c for s in sets for c in sorted(s)], dtype=np.int64)
    return CSR.from_pairs(rows, cols, n), sets


@pytest.mark.parametrize("block", [1, 3, 64])
def test_topk_equals_full_sort(block: int) -> None:
    rng = np.random.default_rng(1)
    n, n_items, k = 23, 50, 7
    scores = torch.from_numpy(rng.standard_normal((n, n_items)).astype(np.float32))
    seen, sets = _random_seen(rng, n, n_items, 10)
    keys = rng.permutation(n)  # score_fn receives keys, not positions
    top = topk_blocked(lambda idx: scores[idx].clone(), keys, n_items, k, seen=seen, block_size=block)
    for row, key in enumerate(keys):
        full = scores[key].numpy().copy()
        full[list(sets[row])] = -np.inf
        expected = np.argsort(-full, kind="stable")[:k]
        np.testing.assert_array_equal(top.items[row], expected)
        np.testing.assert_allclose(top.scores[row], full[expected])
        assert not set(top.items[row].tolist()) & sets[row]


def test_short_lists_pad_with_minus_one_and_nan_is_lowest() -> None:
    scores = torch.tensor([[0.5, float("nan"), 0.1, 0.9], [1.0, 2.0, 3.0, 4.0]])
    seen = CSR.from_pairs(np.array([0, 1, 1, 1]), np.array([3, 0, 1, 2]), 2)
    top = topk_blocked(lambda idx: scores[idx].clone(), np.arange(2), 4, 3, seen=seen, block_size=2)
    assert top.items[0].tolist() == [0, 2, -1]
    assert top.items[1].tolist() == [3, -1, -1]
    assert np.isneginf(top.scores[1, 1:]).all()


def test_k_larger_than_catalogue_is_capped() -> None:
    top = topk_blocked(lambda idx: torch.ones(len(idx), 3), np.arange(4), 3, 10, block_size=2)
    assert top.items.shape == (4, 3)


def test_score_fn_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="expected"):
        topk_blocked(lambda idx: torch.zeros(len(idx), 5), np.arange(3), 4, 2, block_size=2)


def test_csr_from_pairs_dedupes_and_take_reorders() -> None:
    csr = CSR.from_pairs(np.array([2, 0, 2, 2]), np.array([5, 1, 3, 5]), 4)
    assert csr.lengths().tolist() == [1, 0, 2, 0]
    assert csr.row(2).tolist() == [3, 5]
    sub = csr.take(np.array([2, 1, 0]))
    assert [sub.row(i).tolist() for i in range(3)] == [[3, 5], [], [1]]
    with pytest.raises(ValueError, match="out of range"):
        CSR.from_pairs(np.array([4]), np.array([0]), 4)


def test_because_items_picks_most_similar_history_item() -> None:
    rng = np.random.default_rng(3)
    vecs = torch.from_numpy(rng.standard_normal((30, 6)).astype(np.float32))
    hist, _ = _random_seen(rng, 12, 30, 6)
    recs = rng.integers(0, 30, size=(12, 4))
    recs[0, 2:] = -1
    got = because_items(vecs, hist, recs, budget_bytes=400)  # tiny budget: many blocks
    for r in range(12):
        h = hist.row(r)
        for j, item in enumerate(recs[r]):
            if item < 0 or len(h) == 0:
                assert got[r, j] == -1
            else:
                sims = vecs[h] @ vecs[item]
                assert got[r, j] == h[int(torch.argmax(sims))]


def test_similar_items_matches_cosine_brute_force() -> None:
    rng = np.random.default_rng(4)
    vecs = torch.from_numpy(rng.standard_normal((17, 5)).astype(np.float32))
    top = similar_items(vecs, 4, block_size=5)
    unit = torch.nn.functional.normalize(vecs, dim=1)
    for i in range(17):
        sims = (unit @ unit[i]).numpy()
        sims[i] = -np.inf
        np.testing.assert_array_equal(top.items[i], np.argsort(-sims, kind="stable")[:4])
        assert i not in top.items[i]


def test_block_rows_follows_budget() -> None:
    assert block_rows(1000, 12 * 1000 * 50, 10_000) == 50
    assert block_rows(1000, 1, 10_000) == 1
    assert block_rows(10, 1 << 30, 7) == 7
