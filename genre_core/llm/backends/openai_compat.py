"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, Ollama, llama.cpp
server, hosted APIs) over httpx.

``llm.base_url`` includes the API prefix (``http://127.0.0.1:8000/v1``); ``llm.model`` is the served model name;
the API key, when one is needed, is read from the environment variable named by ``llm.api_key_env``. Requests
run ``llm.concurrency`` at a time; 429, 5xx, timeouts and connection errors are retried ``llm.retries`` times
with exponential backoff (``Retry-After`` honoured, capped); other 4xx and malformed bodies fail at once.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from genre_core.llm.backends.base import BACKENDS, LLMBackend, LLMRequest, LLMResult
from genre_core.llm.config import LLMConfig


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


@BACKENDS.register("openai")
class OpenAIBackend(LLMBackend):
    """Chat completions over HTTP, a bounded thread pool, retries with exponential backoff."""

    def __init__(self, cfg: LLMConfig) -> None:
        super().__init__(cfg)
        if not cfg.base_url:
            raise ValueError("llm.base_url must be set for llm.backend 'openai' (e.g. http://127.0.0.1:8000/v1)")
        if not cfg.base_url.startswith(("http://", "https://")):
            raise ValueError(f"llm.base_url must start with http:// or https://, got {cfg.base_url!r}")
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int:
        return max(self.cfg.batch_size, self.cfg.concurrency)

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Content-Type": "application/json"}
                key = os.environ.get(self.cfg.api_key_env)
                if key:
                    headers["Authorization"] = f"Bearer {key}"
                self._client = httpx.Client(
                    base_url=self.cfg.base_url.rstrip("/") + "/", headers=headers,
                    timeout=httpx.Timeout(self.cfg.timeout_s),
                    limits=httpx.Limits(max_connections=self.cfg.concurrency),
                )
            return self._client

    def body(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body of one chat completion request."""
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": request.system}, {"role": "user", "content": request.user}],
            "max_tokens": request.max_new_tokens,
            "temperature": self.cfg.temperature,
            "stream": False,
        }
        if self.cfg.temperature > 0:
            body["seed"] = self.cfg.seed
        return body

    def _delay(self, attempt: int, server_hint: float | None) -> float:
        delay = self.cfg.backoff_s * (2 ** attempt)
        if server_hint is not None:
            delay = max(delay, server_hint)
        return min(delay, self.cfg.backoff_max_s)

    def _parse(self, request: LLMRequest, resp: httpx.Response, attempts: int) -> LLMResult:
        try:
            data = resp.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = resp.text[:120].replace("\n", " ")
            return LLMResult.failed(f"malformed response ({type(exc).__name__}): {snippet!r}", 0, attempts)
        if not isinstance(content, str):
            return LLMResult.failed(f"malformed response: content is {type(content).__name__}", 0, attempts)
        usage = data.get("usage") if isinstance(data, dict) else None
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        if not isinstance(tokens, int):
            tokens = self.count_prompt_tokens(request) + len(content) // 4
        return LLMResult(content, "ok", None, tokens, attempts)

    def _one(self, request: LLMRequest) -> LLMResult:
        reason = "not attempted"
        for attempt in range(self.cfg.retries + 1):
            hint: float | None = None
            try:
                resp = self.client().post("chat/completions", json=self.body(request))
            except httpx.TimeoutException:
                reason = f"timeout after {self.cfg.timeout_s:g}s"
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return self._parse(request, resp, attempt + 1)
                reason = f"HTTP {resp.status_code}: {resp.text[:200].strip()}"
                if resp.status_code != 429 and resp.status_code < 500:
                    return LLMResult.failed(reason, 0, attempt + 1)
                hint = _retry_after(resp)
            if attempt < self.cfg.retries:
                time.sleep(self._delay(attempt, hint))
        return LLMResult.failed(f"{reason} (gave up after {self.cfg.retries + 1} attempts)", 0, self.cfg.retries + 1)

    def _generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        workers = min(self.cfg.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genre-llm") as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
