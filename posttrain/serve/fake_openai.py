"""A local stand-in for an OpenAI-compatible chat completions server.

The capture demo, the proxy benchmark and the proxy's golden tests run against it on
127.0.0.1. It answers like the OpenAI API: the same output as a ``chat.completion`` or,
with ``stream: true``, as ``chat.completion.chunk`` events in the OpenAI layout (the role
in the first chunk, text in small pieces, tool calls as an ``id``/``name`` fragment
followed by ``arguments`` fragments split mid-token, choices interleaved when ``n > 1``,
the finish reason in its own chunk, usage in a last chunk without choices when
``stream_options.include_usage`` is set, then ``[DONE]``).

What it answers is scripted: when the request offers tools and the last message is the
user's, it calls the first tool; after a tool result it answers in text; otherwise it
answers in text. Models named ``fail-500``, ``rate-limit``, ``slow-stream`` and
``break-stream`` fail with an OpenAI error body, answer 429 with ``Retry-After``, stream
slowly (for disconnect tests), or abort the connection after three chunks. ``GET /_stats``
says how many streams ran to the end and how many the client cut.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

CREATED = 1_767_000_000
FINGERPRINT = "fp_fake"


@dataclass
class FakeStats:
    """What the fake server saw."""

    requests: int = 0
    streams_completed: int = 0
    streams_cut: int = 0
    last_authorization: str | None = None


def scripted_message(request: dict[str, Any], choice: int = 0) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason the fake server answers ``request`` with."""
    messages = request.get("messages") or [{"role": "user", "content": ""}]
    last = messages[-1]
    tools = request.get("tools") or []
    if tools and last.get("role") == "user":
        function = tools[0].get("function", {})
        query = str(last.get("content") or "")[:40]
        calls = [
            {
                "id": f"call_{choice}_{i}",
                "type": "function",
                "function": {
                    "name": function.get("name", "tool"),
                    "arguments": json.dumps(
                        {"query": query, "n": i, "unicode": "naïve café ✓"}, ensure_ascii=False
                    ),
                },
            }
            for i in range(2 if "twice" in query else 1)
        ]
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}
        return message, "tool_calls"
    if request.get("model") == "slow-stream":
        text = "slowly " * 100
    elif last.get("role") == "tool":
        text = f"The tool said: {last.get('content')}. Choice {choice}."
    else:
        text = f"You said {last.get('content')!r}; here is answer {choice}, in several pieces."
    return {"role": "assistant", "content": text, "refusal": None}, "stop"


def _usage(request: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in request.get("messages") or [])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": 7 * n,
        "total_tokens": prompt + 7 * n,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def completion(request: dict[str, Any], completion_id: str) -> dict[str, Any]:
    """The non-streaming answer."""
    n = int(request.get("n") or 1)
    choices = []
    for index in range(n):
        message, finish = scripted_message(request, index)
        choices.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": finish}
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": request.get("model"),
        "choices": choices,
        "usage": _usage(request, n),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def chunks(request: dict[str, Any], completion_id: str) -> Iterator[dict[str, Any]]:
    """The streamed answer, chunk by chunk (the same output as :func:`completion`)."""
    n = int(request.get("n") or 1)
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": request.get("model"),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        out = {**base, "choices": [choice]}
        if include_usage:
            out["usage"] = None
        return out

    scripted = [scripted_message(request, index) for index in range(n)]
    deltas: list[list[dict[str, Any]]] = []
    for message, _ in scripted:
        first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        steps = [first]
        if message.get("tool_calls"):
            first["content"] = None
            for position, call in enumerate(message["tool_calls"]):
                steps.append(
                    {
                        "tool_calls": [
                            {
                                "index": position,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in _pieces(call["function"]["arguments"], 4):
                    steps.append(
                        {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}
                    )
        else:
            steps += [{"content": piece} for piece in _pieces(message["content"], 3)]
        deltas.append(steps)
    # Choices interleave, as the API sends them when n > 1.
    for step in range(max(len(d) for d in deltas)):
        for index, steps in enumerate(deltas):
            if step < len(steps):
                yield chunk(index, steps[step])
    for index, (_, finish) in enumerate(scripted):
        yield chunk(index, {}, finish)
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(request, n)}


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    headers = {"x-request-id": "req_fake_error"}
    if status == 429:
        headers["retry-after"] = "7"
    return JSONResponse(body, status_code=status, headers=headers)


def create_fake_openai(*, chunk_delay: float = 0.0) -> FastAPI:
    """The fake server's ASGI app; ``app.state.stats`` holds its :class:`FakeStats`."""
    app = FastAPI(title="fake OpenAI-compatible upstream")
    stats = FakeStats()
    app.state.stats = stats

    @app.get("/_stats")
    async def read_stats() -> dict[str, Any]:
        return dict(stats.__dict__)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        stats.requests += 1
        stats.last_authorization = request.headers.get("authorization")
        body = await request.json()
        model = body.get("model")
        if model == "fail-500":
            return _error(
                500, "The server had an error processing your request.", "server_error", None
            )
        if model == "rate-limit":
            return _error(
                429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded"
            )
        # Unique across runs, as the API's are: a second demo run records new turns.
        completion_id = f"chatcmpl-fake{uuid.uuid4().hex[:20]}"
        if not body.get("stream"):
            return JSONResponse(completion(body, completion_id), headers={"x-request-id": "req_1"})
        delay = 0.05 if model == "slow-stream" else chunk_delay

        async def events() -> AsyncIterator[bytes]:
            finished = False
            try:
                for number, item in enumerate(chunks(body, completion_id)):
                    if model == "break-stream" and number == 3:
                        raise ConnectionAbortedError("the fake server breaks off mid-stream")
                    yield f"data: {json.dumps(item)}\n\n".encode()
                    if delay:
                        await asyncio.sleep(delay)
                yield b"data: [DONE]\n\n"
                finished = True
            finally:
                if finished:
                    stats.streams_completed += 1
                else:
                    stats.streams_cut += 1

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"x-request-id": "req_1"}
        )

    return app


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a daemon thread (tests, demo, bench).

    Example:
        >>> with ServerThread(create_fake_openai()) as server:  # doctest: +SKIP
        ...     print(server.url)
    """

    def __init__(self, app: Any, *, port: int = 0, timeout: float = 20.0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.timeout = timeout
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"uvicorn-{port}")

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout)


def main() -> None:
    """``python -m posttrain.serve.fake_openai --port 8001``: serve until interrupted."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server.")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_fake_openai(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
