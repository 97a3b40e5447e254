"""Stage summaries in the terminal are readable tables at 80 columns: nothing cut to '…', no dict reprs."""
from __future__ import annotations

import pytest

from genre_core.report import print_summary


def test_train_and_nested_summaries_fit_80_columns(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal still gets the 80-column layout
    m = {"ndcg@10": 0.2573, "recall@10": 0.1673, "recall@20": 0.2608, "mrr": 0.4516, "auc": 0.888,
         "coverage@10": 0.2705, "cold_item": {"recall@10": 0.3712}, "fit_s": 203.2, "precision@10": 0.1234,
         "f1@10": 0.1111, "diversity@10": 0.8771, "novelty@10": 10.4321, "rmse": 0.9321, "mae": 0.7321,
         "n_ratings": 20000}
    print_summary("train", {"models": {"popularity": m, "hybrid-without-llm": m}, "registered": {"version": "1"}})
    print_summary("features", {"text": {"embedded": 1682, "dim": 384, "model_id": "text:" + "x" * 120}})
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "{'" not in out
    assert "nDCG@10" in out and "0.257" in out and "text.embedded" in out and "text.dim" in out
    assert "F1@10" in out and "0.877" in out and "10.432" in out and "20000" in out


def test_feedback_and_impression_tables_fit_80_columns(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    row = {"run_id": "20261201T174455-abcdef12", "model_version": "12", "k": 10, "users_shown": 943,
           "users_active": 279, "hit_rate": 0.7276, "precision": 0.3312, "recall": 0.0651, "coverage": 0.3668,
           "novelty": 1.7321}
    print_summary("feedback", {"rows": [row], "unchanged": 0, "mlflow_run_id": "r", "trend_png": "plots/t.png"})
    imp = {"auc": 0.6123, "mrr": 0.3, "ndcg@5": 0.31, "ndcg@10": 0.35, "n_impressions": 120}
    print_summary("train", {"models": {"hybrid": {"ndcg@10": 0.1, "impression": imp}}})
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "{'" not in out
    assert "0.728" in out and "1.732" in out and "abcdef12" in out.replace("\n", "").replace(" ", "")
    assert "nDCG@5" in out and "0.612" in out and "120 test impressions" in out


def test_enrich_table_fits_80_columns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    role = {"subjects": 1682, "prompts": 1664, "ok": 424, "cache_hits": 1240, "pending": 1240, "failures": 3,
            "tokens": 96872, "seconds": 3017.4}
    print_summary("enrich", {"backend": "ctranslate2", "model": "SmolLM2-135M-Instruct.Q4_1@ct2-int8",
                             "roles": {"enrich": role, "profile": role, "cold_gen": role}, "seconds": 3020.1,
                             "items_per_s": 0.141, "budget_reason": "time_budget_s=3000 reached",
                             "published": {"items": 428}})
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "{'" not in out
    assert "cold_gen" in out and "skipped" in out and "items=428" in out and "96872" in out and "290616" in out  # the total row
