"""Stage summaries in the terminal are readable tables at 80 columns: nothing cut to '…', no dict reprs."""
from __future__ import annotations

import pytest

from genre_core.report import print_summary


def test_train_and_nested_summaries_fit_80_columns(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal still gets the 80-column layout
    m = {"ndcg@10": 0.2573, "recall@10": 0.1673, "recall@20": 0.2608, "mrr": 0.4516, "auc": 0.888,
         "coverage@10": 0.2705, "cold_item": {"recall@10": 0.3712}, "fit_s": 203.2}
    print_summary("train", {"models": {"popularity": m, "hybrid-without-llm": m}, "registered": {"version": "1"}})
    print_summary("features", {"text": {"embedded": 1682, "dim": 384, "model_id": "text:" + "x" * 120}})
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out and "{'" not in out
    assert "nDCG@10" in out and "0.257" in out and "text.embedded" in out and "text.dim" in out
