"""The capture proxy against a local server that speaks the OpenAI API (127.0.0.1).

The proxy here is mounted on a bare FastAPI app with a token → workspace dependency and a
recorder that keeps sessions in a list, so each test sees exactly what would be recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from capture_server import wait_for
from fastapi import FastAPI, Header, HTTPException

from posttrain.platform.capture.proxy import ProxySettings
from posttrain.serve.fake_openai import ServerThread, create_fake_openai
from posttrain.serve.proxy import CaptureProxy

TOKEN = "ws-token-alpha"
TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


class Recorder:
    """Keeps what the proxy records; can be told to fail like a log that refuses."""

    def __init__(self) -> None:
        self.sessions: list[tuple[str, dict[str, Any]]] = []
        self.fail: Exception | None = None
        self.lock = threading.Lock()

    def __call__(self, workspace: str, events: list[dict[str, Any]]) -> list[dict[str, str]]:
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.sessions += [(workspace, e) for e in events]
        return [{"id": e["id"], "status": "accepted"} for e in events]

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.sessions) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.sessions)} sessions recorded, waited for {count}")
            time.sleep(0.01)
        return [s for _, s in self.sessions]


def authorize(authorization: str = Header(default="")) -> str:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "unknown token")
    return "alpha"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_fake_openai()) as server:
        yield server


@pytest.fixture(scope="module")
def proxy_server(
    upstream: ServerThread, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[tuple[ServerThread, CaptureProxy, Recorder]]:
    monkeypatch_module.setenv("PT_TEST_UPSTREAM_KEY", "sk-upstream-alpha")
    settings = ProxySettings(
        upstream_url=f"{upstream.url}/v1",
        api_key_env="PT_TEST_UNSET_KEY",
        workspace_key_env={"alpha": "PT_TEST_UPSTREAM_KEY"},
    )
    recorder = Recorder()
    proxy = CaptureProxy(settings, authorize, recorder)
    app = FastAPI()
    app.include_router(proxy.router)
    with ServerThread(app) as server:
        yield server, proxy, recorder


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture
def proxied(
    proxy_server: tuple[ServerThread, CaptureProxy, Recorder],
) -> Iterator[tuple[str, CaptureProxy, Recorder]]:
    server, proxy, recorder = proxy_server
    recorder.sessions.clear()
    recorder.fail = None
    yield f"{server.url}/v1", proxy, recorder


def _post(url: str, body: dict[str, Any], token: str = TOKEN) -> httpx.Response:
    return httpx.post(
        f"{url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def _without_ids(text: str) -> str:
    import re

    return re.sub(r"chatcmpl-fake[0-9a-f]+", "chatcmpl-X", text)


def test_a_non_streaming_answer_is_returned_unchanged_and_recorded(
    proxied: tuple[str, CaptureProxy, Recorder], upstream: ServerThread
) -> None:
    url, _, recorder = proxied
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    through = _post(url, body)
    direct = httpx.post(f"{upstream.url}/v1/chat/completions", json=body, timeout=10)
    assert through.status_code == 200
    assert _without_ids(through.text) == _without_ids(direct.text)
    assert through.headers["x-request-id"] == "req_1"
    (session,) = recorder.wait(1)
    answer = through.json()["choices"][0]["message"]
    assert session["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": answer["content"]},
    ]
    assert session["id"] == through.json()["id"]


@pytest.mark.parametrize("tools", [None, TOOLS], ids=["text", "tool calls"])
def test_a_streamed_answer_is_relayed_byte_for_byte_and_recorded_as_the_non_streaming_message(
    proxied: tuple[str, CaptureProxy, Recorder], upstream: ServerThread, tools: Any
) -> None:
    url, _, recorder = proxied
    body: dict[str, Any] = {
        "model": "m",
        "n": 2,
        "messages": [{"role": "user", "content": "search twice"}],
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = tools
    streamed = _post(url, {**body, "stream": True})
    direct = httpx.post(
        f"{upstream.url}/v1/chat/completions", json={**body, "stream": True}, timeout=10
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert _without_ids(streamed.text) == _without_ids(direct.text)
    sessions = recorder.wait(2)
    recorder.sessions.clear()
    _post(url, body)  # the same call, not streamed
    plain = recorder.wait(2)
    for from_stream, from_plain in zip(sessions, plain, strict=True):
        without = {k: v for k, v in from_plain["metadata"].items() if k != "latency_ms"}
        assert from_stream["messages"] == from_plain["messages"]
        assert {
            k: v
            for k, v in from_stream["metadata"].items()
            if k not in ("latency_ms", "completion_id", "streamed")
        } == {k: v for k, v in without.items() if k not in ("completion_id", "streamed")}
    if tools:
        calls = sessions[1]["messages"][-1]["tool_calls"]
        assert [c["id"] for c in calls] == ["call_1_0", "call_1_1"]
        assert json.loads(calls[0]["function"]["arguments"])["unicode"] == "naïve café ✓"


def test_the_openai_client_works_through_the_proxy_by_changing_its_base_url(
    proxied: tuple[str, CaptureProxy, Recorder],
) -> None:
    openai = pytest.importorskip("openai")
    url, _, recorder = proxied
    client = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=10)
    messages = [{"role": "user", "content": "weather?"}]
    plain = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    with client.chat.completions.stream(model="m", messages=messages, tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    plain_call = plain.choices[0].message.tool_calls[0]
    streamed_call = final.choices[0].message.tool_calls[0]
    assert (streamed_call.id, streamed_call.function.arguments) == (
        plain_call.id,
        plain_call.function.arguments,
    )
    recorded = recorder.wait(2)
    assert recorded[0]["messages"] == recorded[1]["messages"]


def test_the_upstream_gets_the_workspace_key_never_the_workspace_token(
    proxied: tuple[str, CaptureProxy, Recorder], upstream: ServerThread
) -> None:
    url, _, _ = proxied
    _post(url, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    stats = httpx.get(f"{upstream.url}/_stats", timeout=5).json()
    assert stats["last_authorization"] == "Bearer sk-upstream-alpha"


def test_an_unknown_token_is_refused_before_anything_is_forwarded(
    proxied: tuple[str, CaptureProxy, Recorder], upstream: ServerThread
) -> None:
    url, _, recorder = proxied
    before = httpx.get(f"{upstream.url}/_stats", timeout=5).json()["requests"]
    answer = _post(url, {"model": "m", "messages": []}, token="stolen")
    assert answer.status_code == 401
    assert httpx.get(f"{upstream.url}/_stats", timeout=5).json()["requests"] == before
    assert recorder.sessions == []


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("model", "status"), [("fail-500", 500), ("rate-limit", 429)])
def test_upstream_errors_pass_through_unchanged_and_record_nothing(
    proxied: tuple[str, CaptureProxy, Recorder],
    upstream: ServerThread,
    model: str,
    status: int,
    stream: bool,
) -> None:
    url, _, recorder = proxied
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    through = _post(url, body)
    direct = httpx.post(f"{upstream.url}/v1/chat/completions", json=body, timeout=10)
    assert through.status_code == direct.status_code == status
    assert through.content == direct.content
    assert through.headers.get("retry-after") == direct.headers.get("retry-after")
    assert through.headers["x-request-id"] == "req_fake_error"
    time.sleep(0.05)
    assert recorder.sessions == []


def test_a_capture_failure_never_fails_the_agents_call_and_is_counted(
    proxied: tuple[str, CaptureProxy, Recorder],
) -> None:
    url, proxy, recorder = proxied
    recorder.fail = OSError("write-ahead log refuses: disk full")
    failures = proxy.stats.capture_failures
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    plain = _post(url, body)
    streamed = _post(url, {**body, "stream": True})
    assert plain.status_code == streamed.status_code == 200
    assert plain.json()["choices"][0]["message"]["content"]
    assert streamed.text.rstrip().endswith("data: [DONE]")
    wait_for(lambda: proxy.stats.capture_failures == failures + 2, timeout=10)
    assert "disk full" in proxy.stats.last_failure


def test_a_refused_ack_counts_as_a_capture_failure(
    proxied: tuple[str, CaptureProxy, Recorder],
) -> None:
    url, proxy, _ = proxied
    original = proxy.recorder
    proxy.recorder = lambda workspace, sessions: [{"status": "refused", "reason": "full"}]
    try:
        failures = proxy.stats.capture_failures
        assert _post(url, {"model": "m", "messages": [{"role": "user", "content": "x"}]}).is_success
        wait_for(lambda: proxy.stats.capture_failures == failures + 1, timeout=10)
    finally:
        proxy.recorder = original


def test_a_client_that_disconnects_mid_stream_closes_the_upstream_and_records_what_arrived(
    proxied: tuple[str, CaptureProxy, Recorder], upstream: ServerThread
) -> None:
    url, _, recorder = proxied
    cut_before = httpx.get(f"{upstream.url}/_stats", timeout=5).json()["streams_cut"]
    body = {"model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    received = b""
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"\n\n") >= 5:
                break  # leaving the block closes the connection mid-stream
    (session,) = recorder.wait(1)
    capture = session["metadata"]
    assert capture["outcome"] == "client_disconnected"
    assert capture["finish_reason"] is None
    content = session["messages"][-1]["content"]
    assert content and len(content) < len("slowly " * 100)
    assert ("slowly " * 100).startswith(content)
    wait_for(
        lambda: (
            httpx.get(f"{upstream.url}/_stats", timeout=5).json()["streams_cut"] == cut_before + 1
        ),
        timeout=10,
    )


def test_an_unreachable_upstream_answers_502_in_the_openai_error_shape() -> None:
    recorder = Recorder()
    settings = ProxySettings(upstream_url="http://127.0.0.1:9/v1", connect_timeout_seconds=2)
    proxy = CaptureProxy(settings, authorize, recorder)
    app = FastAPI()
    app.include_router(proxy.router)
    with ServerThread(app) as server:
        answer = _post(f"{server.url}/v1", {"model": "m", "messages": []})
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "upstream_error"
    assert proxy.stats.upstream_unreachable == 1


def test_a_response_past_the_capture_bound_reaches_the_agent_whole_and_is_marked_cut(
    upstream: ServerThread,
) -> None:
    recorder = Recorder()
    settings = ProxySettings(upstream_url=f"{upstream.url}/v1", max_capture_bytes=1024)
    proxy = CaptureProxy(settings, authorize, recorder)
    app = FastAPI()
    app.include_router(proxy.router)
    long = "words " * 200  # about 400 chunks
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": long}]}
    with ServerThread(app) as server:
        answer = _post(f"{server.url}/v1", body)
    assert answer.text.rstrip().endswith("data: [DONE]") and len(answer.content) > 1024
    (event,) = recorder.wait(1)
    assert event["metadata"]["outcome"] == "capture_truncated"


def test_an_oversized_request_is_refused_413_and_never_forwarded(
    upstream: ServerThread,
) -> None:
    settings = ProxySettings(upstream_url=f"{upstream.url}/v1", max_request_bytes=4096)
    proxy = CaptureProxy(settings, authorize, Recorder())
    app = FastAPI()
    app.include_router(proxy.router)
    before = httpx.get(f"{upstream.url}/_stats", timeout=5).json()["requests"]
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]}
    with ServerThread(app) as server:
        answer = _post(f"{server.url}/v1", body)
    assert answer.status_code == 413
    assert "max_request_bytes" in answer.json()["error"]["message"]
    assert httpx.get(f"{upstream.url}/_stats", timeout=5).json()["requests"] == before


def test_an_upstream_that_breaks_off_mid_stream_breaks_the_agents_stream_too(
    proxied: tuple[str, CaptureProxy, Recorder],
) -> None:
    url, _, recorder = proxied
    body = {"model": "break-stream", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(httpx.HTTPError):
        _post(url, body)  # no clean end of stream: the agent sees the failure
    (event,) = recorder.wait(1)
    assert event["metadata"]["outcome"] == "upstream_broke_off"
    assert event["metadata"]["finish_reason"] is None
