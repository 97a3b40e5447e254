"""Fixtures for the LLM tests: a tiny causal LM saved to disk, a small warehouse, a loopback OpenAI server."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_helpers import build_tiny_lm, fill_warehouse  # noqa: E402
from openai_stub import StubServer  # noqa: E402

from genre_core.config import GenreConfig, load_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture
def warehouse_cfg(genre_home: Path) -> GenreConfig:
    """A config over a fresh GENRE_HOME whose warehouse holds ITEMS and RATINGS; LLM on, tiny limits. The
    profilers see every event here (``llm.user_history=all``: the prompt-rendering tests count all 6 + 2 events);
    tests/llm/test_training_events.py covers the default, training events only."""
    cfg = load_config(overrides=["llm.enabled=true", "llm.backend=none", "llm.max_new_tokens=6", "llm.batch_size=4",
                                 "llm.user_history=all",
                                 "llm.write_every=2", "llm.backoff_s=0.01", "llm.timeout_s=10"])
    fill_warehouse(cfg)
    return cfg


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    try:
        yield server
    finally:
        server.close()
