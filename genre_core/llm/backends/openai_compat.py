"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, Ollama, llama.cpp
server, hosted APIs) over httpx.

``llm.base_url`` includes the API prefix (``http://127.0.0.1:8000/v1``); ``llm.model`` is the served model name;
the API key, when one is needed, is read from the environment variable named by ``llm.api_key_env``. Requests
run ``llm.concurrency`` at a time; 429, 5xx, timeouts and connection errors are retried ``llm.retries`` times
with exponential backoff (``Retry-After`` honoured, capped); other 4xx and malformed bodies fail at once.
Each call has an overall deadline (``llm.timeout_s``, the body included) and a body-size cap
(``llm.max_response_bytes``); the tokens charged to the budget are counted here (``spent_tokens``).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from genre_core.llm.backends.base import BACKENDS, LLMBackend, LLMRequest, LLMResult
from genre_core.llm.config import LLMConfig


class _Deadline(Exception):
    """The overall deadline of one call (``llm.timeout_s``) passed while the body was still arriving."""


class _TooLarge(Exception):
    """The response body is larger than ``llm.max_response_bytes``."""


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

    def spent_tokens(self, request: LLMRequest, content: str, usage: Any) -> int:
        """Tokens charged to the budget: the prompt counted here (never the server's figure) plus the completion,
        taken as the larger of the server's ``completion_tokens`` and a local estimate (~4 characters per token),
        capped by the requested ``max_tokens``. A server under-reporting cannot stretch the budget, and one
        over-reporting cannot charge more than the call could have cost."""
        reported = usage.get("completion_tokens") if isinstance(usage, dict) else None
        local = len(content) // 4 + 1
        completion = max(local, reported) if isinstance(reported, int) and not isinstance(reported, bool) else local
        return self.count_prompt_tokens(request) + min(completion, request.max_new_tokens)

    def _parse(self, request: LLMRequest, raw: bytes, attempts: int) -> LLMResult:
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = raw[:120].decode("utf-8", "replace").replace("\n", " ")
            return LLMResult.failed(f"malformed response ({type(exc).__name__}): {snippet!r}", 0, attempts)
        if not isinstance(content, str):
            return LLMResult.failed(f"malformed response: content is {type(content).__name__}", 0, attempts)
        usage = data.get("usage") if isinstance(data, dict) else None
        return LLMResult(content, "ok", None, self.spent_tokens(request, content, usage), attempts)

    def _post(self, request: LLMRequest) -> tuple[int, bytes, float | None]:
        """(status, body, Retry-After) of one POST, read in a stream: raises ``_Deadline`` when the whole call
        (connect, wait and every body chunk) passes ``llm.timeout_s`` and ``_TooLarge`` when the body passes
        ``llm.max_response_bytes`` (announced or received), so a slow-drip or endless server cannot hold a run."""
        deadline = time.monotonic() + self.cfg.timeout_s
        cap = self.cfg.max_response_bytes
        with self.client().stream("POST", "chat/completions", json=self.body(request)) as resp:
            announced = resp.headers.get("content-length")
            if announced and announced.isdigit() and int(announced) > cap:
                raise _TooLarge(f"response of {int(announced)} bytes > llm.max_response_bytes={cap}")
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _TooLarge(f"response over llm.max_response_bytes={cap} bytes")
                if time.monotonic() > deadline:
                    raise _Deadline()
                chunks.append(chunk)
            return resp.status_code, b"".join(chunks), _retry_after(resp)

    def _one(self, request: LLMRequest) -> LLMResult:
        reason = "not attempted"
        for attempt in range(self.cfg.retries + 1):
            hint: float | None = None
            try:
                status, raw, hint = self._post(request)
            except (httpx.TimeoutException, _Deadline):
                reason = f"timeout after {self.cfg.timeout_s:g}s"
            except _TooLarge as exc:
                return LLMResult.failed(str(exc), 0, attempt + 1)
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    return self._parse(request, raw, attempt + 1)
                reason = f"HTTP {status}: {raw[:200].decode('utf-8', 'replace').strip()}"
                if status != 429 and status < 500:
                    return LLMResult.failed(reason, 0, attempt + 1)
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
