"""bench.diversity's re-ranked view: the evaluation's own top-k reads exactly the MMR list of the serving code."""
from __future__ import annotations

import numpy as np
import pytest

from bench.diversity import Reranked
from genre_core.evaluation.evaluate import evaluate, evaluate_per_user, make_eval_set
from genre_core.recommend.diversity import centred_unit_rows, mmr_rerank
from tests.evaluation.test_eval_evaluate import FixedScores, targets


@pytest.mark.parametrize("weight", [0.0, 0.6, 1.0])
def test_reranked_view_ranks_the_mmr_list_first(weight: float) -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((6, 12))
    histories = [[0, 1], [2], [], [5, 6, 7], [11], [3]]
    base = FixedScores(scores, histories)
    vectors = centred_unit_rows(rng.standard_normal((12, 4)), np.ones(12, bool))
    view = Reranked(base, vectors, k=3, pool=6, weight=weight)
    es = make_eval_set("t", targets([(u, 4 if u != 4 else 8) for u in range(6)]))
    _, top = evaluate_per_user(view, es, [3], with_auc=False)
    for row, u in enumerate(es.users):
        s = scores[u].copy()
        s[histories[u]] = -np.inf
        pool = np.argsort(-s, kind="stable")[:6]
        expected, _ = mmr_rerank(pool[None], s[pool][None], vectors, 3, weight)
        assert top[row].tolist() == expected[0].tolist(), u
    if weight == 0.0:  # no re-ranking: the same metrics as the model itself
        assert evaluate(view, es, [3], with_auc=False)["ndcg@3"] == pytest.approx(
            evaluate(base, es, [3], with_auc=False)["ndcg@3"])
