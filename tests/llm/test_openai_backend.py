"""The OpenAI-compatible HTTP backend against a real server on loopback."""
from __future__ import annotations

import time

import pytest

from genre_core.llm.backends import LLMRequest, get_backend
from genre_core.llm.config import LLMConfig


def _cfg(base_url: str, **kw: object) -> LLMConfig:
    base = {"backend": "openai", "model": "stub-model", "base_url": base_url, "retries": 2, "backoff_s": 0.01,
            "timeout_s": 5.0, "concurrency": 3}
    return LLMConfig(**{**base, **kw})


def _req(user: str, key: str = "k") -> LLMRequest:
    return LLMRequest(key=key, system="You write short catalogue descriptions.", user=user, max_new_tokens=16)


def test_success_returns_content_and_usage_tokens(stub_server, monkeypatch):
    monkeypatch.setenv("GENRE_TEST_LLM_KEY", "sk-test-123")
    backend = get_backend(_cfg(stub_server.base_url, api_key_env="GENRE_TEST_LLM_KEY"))
    req = _req("Title: Space Robot\nCategory: Action")
    [res] = backend.generate([req])
    assert res.status == "ok", res.error
    assert res.output.startswith("Keywords: space robot, stub\nDescription: An item called Space Robot. Ref ")
    # prompt counted locally; completion = the larger of the server's count and the local one, capped at 16
    assert res.tokens == backend.count_prompt_tokens(req) + min(16, max(len(res.output.split()), len(res.output) // 4 + 1))
    assert res.attempts == 1
    assert stub_server.auth == ["Bearer sk-test-123"]  # key from the env var named in config
    backend.close()


def test_no_key_header_when_env_var_unset(stub_server, monkeypatch):
    monkeypatch.delenv("GENRE_LLM_API_KEY", raising=False)
    backend = get_backend(_cfg(stub_server.base_url))
    assert backend.generate([_req("Title: A")])[0].status == "ok"
    assert stub_server.auth == [None]


def test_429_is_retried_then_succeeds(stub_server):
    backend = get_backend(_cfg(stub_server.base_url))
    [res] = backend.generate([_req("Title: RATELIMIT movie")])
    assert res.status == "ok" and res.attempts == 2
    assert stub_server.requests["Title: RATELIMIT movie"] == 2


def test_500_is_retried_then_recorded_as_failure(stub_server):
    backend = get_backend(_cfg(stub_server.base_url, retries=2))
    [res] = backend.generate([_req("Title: BROKEN500")])
    assert res.status == "failed" and res.output is None
    assert "HTTP 500" in res.error and "3 attempts" in res.error
    assert stub_server.requests["Title: BROKEN500"] == 3


def test_other_4xx_is_not_retried(stub_server):
    [res] = get_backend(_cfg(stub_server.base_url)).generate([_req("Title: BAD400")])
    assert res.status == "failed" and "HTTP 400" in res.error and res.attempts == 1
    assert stub_server.requests["Title: BAD400"] == 1


def test_timeout_is_retried_then_recorded(stub_server):
    stub_server.slow_s = 1.0
    backend = get_backend(_cfg(stub_server.base_url, timeout_s=0.2, retries=1))
    t0 = time.perf_counter()
    [res] = backend.generate([_req("Title: SLOWPOKE")])
    assert res.status == "failed" and "timeout after 0.2s" in res.error and res.attempts == 2
    assert time.perf_counter() - t0 < 1.5  # the client gave up; it did not wait for the answers


@pytest.mark.parametrize("marker", ["BADBODY", "NOCHOICES"])
def test_malformed_body_is_a_failure_without_retry(stub_server, marker):
    [res] = get_backend(_cfg(stub_server.base_url)).generate([_req(f"Title: {marker}")])
    assert res.status == "failed" and res.error.startswith("malformed response")
    assert stub_server.requests[f"Title: {marker}"] == 1


def test_mixed_chunk_keeps_order_and_respects_concurrency(stub_server):
    users = [f"Title: item{i}" for i in range(9)] + ["Title: BROKEN500", "Title: RATELIMIT x"]
    backend = get_backend(_cfg(stub_server.base_url, concurrency=3, retries=1))
    results = backend.generate([_req(u, key=str(i)) for i, u in enumerate(users)])
    assert [r.status for r in results] == ["ok"] * 9 + ["failed", "ok"]
    assert all(f"item{i}" in results[i].output for i in range(9))
    assert 1 < stub_server.max_in_flight <= 3


def test_connection_refused_is_a_recorded_failure():
    backend = get_backend(_cfg("http://127.0.0.1:9/v1", retries=1))  # discard port: nothing listens
    [res] = backend.generate([_req("Title: x")])
    assert res.status == "failed" and res.error.startswith("connection error")


def test_base_url_is_required():
    with pytest.raises(ValueError, match="llm.base_url must be set"):
        get_backend(LLMConfig(backend="openai"))
