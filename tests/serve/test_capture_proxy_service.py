"""The proxy and the OTLP receiver inside ``posttrain serve``'s app: real tokens and roles,
the real write-ahead log and flusher, rows in bronze (one app for the module)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from capture_server import CaptureHome, make_home, wait_for
from otlp_traces import EXPECTED, semconv_trace

from posttrain.platform.capture.events import capture_record_id
from posttrain.platform.capture.service import CaptureUnavailable
from posttrain.platform.errors import QueryError
from posttrain.platform.query import run_query
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse
from posttrain.serve.app import create_app
from posttrain.serve.fake_openai import ServerThread, create_fake_openai

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(create_fake_openai()) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, upstream: ServerThread
) -> Iterator[tuple[CaptureHome, ServerThread, Any]]:
    home = make_home(tmp_path_factory.mktemp("proxy") / "home")
    settings_file = home.path / "posttrain.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["proxy"] = {"upstream_url": f"{upstream.url}/v1", "api_key_env": "PT_UNSET_KEY"}
    settings["otlp"] = {"idle_seconds": 0.5}
    settings_file.write_text(yaml.safe_dump(settings))
    app = create_app(load_settings(home.path))
    with ServerThread(app, timeout=60) as server:
        yield home, server, app


def _rows(home: CaptureHome, workspace: str) -> list[dict[str, Any]]:
    warehouse = Warehouse(load_settings(home.path).warehouse)
    try:
        table = run_query(
            warehouse, "select record_id, payload, source from bronze.records", workspace=workspace
        )
    except QueryError:  # no flush yet: bronze.records does not exist
        return []
    return list(table.to_pylist())


def _flushed_rows(
    app: Any,
    home: CaptureHome,
    workspace: str,
    wanted: Callable[[dict[str, Any]], bool],
    count: int,
) -> list[dict[str, Any]]:
    """The ``count`` rows of ``workspace`` that are ``wanted``, once a flush brought them
    (bronze is queried once per flush, not in a busy loop)."""
    metrics = app.state.service.metrics
    seen = -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        flushed = metrics.get("events_flushed_total")
        if flushed != seen:
            seen = flushed
            rows = [r for r in _rows(home, workspace) if wanted(r)]
            if len(rows) >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} rows of {workspace} reached bronze in time")


def test_an_agent_using_the_openai_client_lands_in_its_workspace_in_bronze(
    service: tuple[CaptureHome, ServerThread, Any],
) -> None:
    openai = pytest.importorskip("openai")
    home, server, app = service
    client = openai.OpenAI(
        base_url=f"{server.url}/v1",
        api_key=home.token("alpha"),
        max_retries=0,
        default_headers={"X-Posttrain-Session": "run-1"},
    )
    messages: list[Any] = [{"role": "user", "content": "find cats"}]
    with client.chat.completions.stream(model="m", messages=messages, tools=TOOLS) as stream:
        first = stream.get_final_completion()
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "3 cats"},
    ]
    second = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    turn_ids = {
        capture_record_id("alpha", "turn", "run-1", first.id): first,
        capture_record_id("alpha", "turn", "run-1", second.id): second,
    }
    rows = _flushed_rows(app, home, "alpha", lambda r: r["record_id"] in turn_ids, 2)
    last = next(r for r in rows if turn_ids[r["record_id"]] is second)
    payload = json.loads(last["payload"])
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert payload["messages"][1]["tool_calls"][0]["function"]["arguments"] == (
        call.function.arguments
    )
    assert payload["messages"][-1]["content"] == second.choices[0].message.content
    assert (payload["session_id"], payload["turn_id"]) == ("run-1", second.id)
    assert last["source"] == "alpha/openai-proxy"
    assert _rows(home, "beta") == []


def test_a_reader_token_may_not_write_through_the_proxy(
    service: tuple[CaptureHome, ServerThread, Any],
) -> None:
    home, server, _ = service
    answer = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {home.token('alpha', 'reader')}"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert "reader" in answer.json()["error"]


def test_a_full_capture_log_does_not_fail_the_call_and_is_counted_in_metrics(
    service: tuple[CaptureHome, ServerThread, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, server, app = service

    def full() -> None:
        raise CaptureUnavailable(429, "the capture log is full", 1)

    monkeypatch.setattr(app.state.service, "check_room", full)
    answer = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {home.token('alpha')}"},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["choices"]

    def counted() -> bool:
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        return 'posttrain_capture_failures_total{reason="proxy"} 1' in metrics

    wait_for(counted, timeout=10)


def test_the_opentelemetry_exporter_sends_a_gzip_trace_that_lands_as_one_conversation(
    service: tuple[CaptureHome, ServerThread, Any],
) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    home, server, app = service
    spans = semconv_trace()
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces",
        headers={"Authorization": f"Bearer {home.token('beta')}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    trace_id = format(spans[0].context.trace_id, "032x")
    record_id = capture_record_id("beta", "session", trace_id)
    (row,) = _flushed_rows(app, home, "beta", lambda r: r["record_id"] == record_id, 1)
    payload = json.loads(row["payload"])
    assert payload["messages"] == EXPECTED
    assert row["source"] == "beta/weather-agent"


def test_an_otlp_json_export_is_answered_in_json_and_split_traces_wait_for_their_root(
    service: tuple[CaptureHome, ServerThread, Any],
) -> None:
    from otlp_traces import json_body

    home, server, app = service
    spans = semconv_trace()
    children = [s for s in spans if s.parent is not None]
    root = [s for s in spans if s.parent is None]
    headers = {
        "Authorization": f"Bearer {home.token('alpha')}",
        "Content-Type": "application/json",
    }
    trace_id = format(spans[0].context.trace_id, "032x")
    record_id = capture_record_id("alpha", "session", trace_id)
    first = httpx.post(
        f"{server.url}/v1/traces", content=json_body(children), headers=headers, timeout=10
    )
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/json")
    assert "partialSuccess" in first.json()  # the HTTP span carries no gen_ai data: a warning
    second = httpx.post(
        f"{server.url}/v1/traces", content=json_body(root), headers=headers, timeout=10
    )
    assert second.status_code == 200 and second.json() == {}
    (row,) = _flushed_rows(app, home, "alpha", lambda r: r["record_id"] == record_id, 1)
    assert json.loads(row["payload"])["messages"] == EXPECTED


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"hello", 415),
        ("application/x-protobuf", b"\xff\xffnot protobuf", 400),
        ("application/json", b"{broken", 400),
    ],
)
def test_bad_otlp_requests_get_the_status_the_otlp_spec_names(
    service: tuple[CaptureHome, ServerThread, Any], content_type: str, body: bytes, status: int
) -> None:
    home, server, _ = service
    answer = httpx.post(
        f"{server.url}/v1/traces",
        content=body,
        headers={"Authorization": f"Bearer {home.token('alpha')}", "Content-Type": content_type},
        timeout=10,
    )
    assert answer.status_code == status


def test_an_otlp_export_without_a_token_is_refused(
    service: tuple[CaptureHome, ServerThread, Any], tmp_path: Path
) -> None:
    _, server, _ = service
    answer = httpx.post(
        f"{server.url}/v1/traces",
        content=b"",
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert answer.status_code == 401


def test_a_gzip_bomb_on_the_traces_endpoint_is_refused_without_inflating_it(
    service: tuple[CaptureHome, ServerThread, Any],
) -> None:
    import gzip

    home, server, _ = service
    bomb = gzip.compress(b"\0" * (40 << 20), compresslevel=9)  # 40 MiB → about 40 KiB
    answer = httpx.post(
        f"{server.url}/v1/traces",
        content=bomb,
        headers={
            "Authorization": f"Bearer {home.token('alpha')}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        },
        timeout=30,
    )
    assert answer.status_code == 413
