"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat completions API, for tests.

Each test scripts its answers with a ``reply`` function: the request body and how many
times this same prompt was asked before → a :class:`Reply`. Besides answers it can misbehave
the ways real endpoints do: an HTTP status (429, 500), a slow reply, a malformed body, a
body that never ends, a dropped connection.

    with FakeOpenAI(lambda body, seen: Reply.text("42")) as server:
        runner = runner_for(f"openai:{server.base_url}#fake")
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long a "never ending" body or a slow reply lasts at most: the client must give up
# well before; this only bounds the server thread if it does not.
MAX_MISBEHAVIOUR_S = 15.0


@dataclass(frozen=True)
class Reply:
    kind: str  # text, status, sleep, malformed, endless, drop
    content: str = ""
    finish_reason: str = "stop"
    status: int = 200
    seconds: float = 0.0
    retry_after: str | None = None

    @classmethod
    def text(cls, content: str, finish_reason: str = "stop") -> Reply:
        return cls("text", content, finish_reason)

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Reply:
        return cls("status", status=status, retry_after=retry_after)


Responder = Callable[[dict[str, Any], int], Reply]


def prompt_of(body: dict[str, Any]) -> str:
    """The text of the last user message of a request."""
    return str(body["messages"][-1]["content"])


class FakeOpenAI:
    """``POST /v1/chat/completions`` on a free port of 127.0.0.1, in a daemon thread."""

    def __init__(self, reply: Responder) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append(body)
                    key = json.dumps(body["messages"], sort_keys=True)
                    seen = server._seen[key]
                    server._seen[key] += 1
                server._answer(self, body, server.reply(body, seen))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        def send(status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)

        if reply.kind == "sleep":
            time.sleep(min(reply.seconds, MAX_MISBEHAVIOUR_S))
            reply = Reply.text(reply.content)
        if reply.kind == "text":
            document = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            send(200, json.dumps(document).encode())
        elif reply.kind == "status":
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            send(reply.status, json.dumps({"error": {"message": "scripted"}}).encode(), headers)
        elif reply.kind == "malformed":
            send(200, reply.content.encode())
        elif reply.kind == "endless":
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("transfer-encoding", "chunked")
            handler.end_headers()
            chunk = b'{"choices": [{"message": {"content": "' + b"la " * 4000
            until = time.monotonic() + MAX_MISBEHAVIOUR_S
            try:
                while time.monotonic() < until:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    chunk = b"la " * 4000
            except OSError:
                pass  # the client hung up, as it should
            handler.close_connection = True
        elif reply.kind == "drop":
            handler.close_connection = True
            handler.connection.close()
