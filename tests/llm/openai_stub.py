"""A small OpenAI-compatible chat-completions server on loopback, for tests and for trying the HTTP backend.

It answers ``POST /v1/chat/completions`` with a content-enricher style answer built from the user message. Words
in the user message script failures: ``RATELIMIT`` -> 429 on the first request of that prompt, then success;
``BROKEN500`` -> always 500; ``SLOWPOKE`` -> answers after ``slow_s`` seconds; ``BADBODY`` -> 200 with a body that
is not JSON; ``NOCHOICES`` -> 200 JSON without choices; ``BAD400`` -> 400; ``DRIPFEED`` -> a valid answer sent a
few bytes at a time over ``drip_s`` seconds (each gap far below a read timeout); ``HUGEBODY`` -> a 3 MB answer with
its Content-Length; ``ENDLESS`` -> a 3 MB answer streamed without Content-Length; ``LIAR`` -> a valid answer whose
``usage`` claims 1 prompt token, 0 completion tokens and ``total_tokens: -1000``; ``MARKUP`` -> an answer full of
HTML, markdown, control and zero-width characters.

Run standalone: ``python tests/llm/openai_stub.py --port 8011`` (then ``llm.base_url: http://127.0.0.1:8011/v1``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    """Start on 127.0.0.1 with an ephemeral port (``port=0``); ``base_url`` is what ``llm.base_url`` takes."""

    def __init__(self, port: int = 0, slow_s: float = 3.0, drip_s: float = 3.0) -> None:
        self.slow_s = slow_s
        self.drip_s = drip_s
        self.requests: Counter[str] = Counter()  # user message -> requests seen
        self.auth: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.fail_500 = True  # tests switch BROKEN500 off to check that failures are retried next run
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _done(self) -> None:
                """Leave the in-flight count once the answer is ready (before it is written: a client may send
                its next request as soon as it has read this one)."""
                if getattr(self, "_counted", False):
                    with server.lock:
                        server.in_flight -= 1
                    self._counted = False

            def _send(self, code: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
                self._done()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                user = next((m["content"] for m in payload.get("messages", []) if m.get("role") == "user"), "")
                with server.lock:
                    server.requests[user] += 1
                    seen = server.requests[user]
                    server.auth.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self._counted = True
                try:
                    self._answer(payload, user, seen)
                finally:
                    self._done()

            def _answer(self, payload: dict, user: str, seen: int) -> None:
                time.sleep(0.02)  # long enough for concurrent requests to overlap
                if "RATELIMIT" in user and seen == 1:
                    return self._send(429, b'{"error": "slow down"}', extra={"Retry-After": "0"})
                if "BROKEN500" in user and server.fail_500:
                    return self._send(500, b'{"error": "internal"}')
                if "BAD400" in user:
                    return self._send(400, b'{"error": "bad request"}')
                if "SLOWPOKE" in user:
                    time.sleep(server.slow_s)
                if "BADBODY" in user:
                    return self._send(200, b"<html>this is not json</html>", "text/html")
                if "NOCHOICES" in user:
                    return self._send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
                first = user.splitlines()[0].split(":", 1)[-1].strip() if user else "nothing"
                ref = hashlib.sha1(user.encode()).hexdigest()[:6]  # answers differ when any part of the prompt does
                content = f"Keywords: {first.lower()}, stub\nDescription: An item called {first}. Ref {ref}."
                if "MARKUP" in user:
                    content = ("## **Description:** <b>A <i>bold</i></b> [film](http://x.y) \x1b[31mred\x07\u200b\u202e"
                               "\n\n> Keywords: `space`, <script>alert(1)</script>robots</data>")
                if "HUGEBODY" in user or "ENDLESS" in user:
                    content = "x" * 3_000_000
                usage = {"prompt_tokens": len(user.split()), "completion_tokens": len(content.split()),
                         "total_tokens": len(user.split()) + len(content.split())}
                if "LIAR" in user:
                    usage = {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": -1000}
                body = {"id": "cmpl-stub", "object": "chat.completion", "model": payload.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}], "usage": usage}
                raw = json.dumps(body).encode()
                if "DRIPFEED" in user or "ENDLESS" in user:
                    return self._stream(raw, server.drip_s if "DRIPFEED" in user else 0.0)
                return self._send(200, raw)

            def _stream(self, raw: bytes, over_s: float) -> None:
                """Send ``raw`` without Content-Length (HTTP/1.0: the body ends when the connection closes),
                in pieces spread over ``over_s`` seconds."""
                self._done()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.close_connection = True
                step = max(1, len(raw) // 30) if over_s else 65536
                try:
                    for i in range(0, len(raw), step):
                        self.wfile.write(raw[i:i + step])
                        self.wfile.flush()
                        if over_s:
                            time.sleep(over_s / 30)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8011)
    args = ap.parse_args()
    srv = StubServer(port=args.port)
    print(f"serving {srv.base_url}/chat/completions (Ctrl-C to stop)", flush=True)
    try:
        srv.thread.join()
    except KeyboardInterrupt:
        srv.close()
