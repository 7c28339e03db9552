"""Zero loss: kill -9 in the middle of a load, restart, and every acknowledged event is in
bronze exactly once; a full log answers 429 with Retry-After."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from capture_server import Server, call, free_port, make_home

from posttrain.platform.capture.events import capture_record_id
from posttrain.platform.capture.wal import read_segment
from posttrain.platform.query import run_query
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.serve.app import create_app


def _session(event_id: str) -> dict[str, Any]:
    return {"type": "session", "id": event_id, "messages": [{"role": "user", "content": event_id}]}


def _load(url: str, token: str, prefix: str, acked: set[str], stop: threading.Event) -> None:
    """Send batches of 20 until the server dies; remember what it acknowledged."""
    number = 0
    while not stop.is_set():
        batch = [_session(f"{prefix}-{number + i}") for i in range(20)]
        number += 20
        try:
            status, answer, _ = call(
                url + "/v1/events", "POST", {"events": batch}, token=token, timeout=10
            )
        except (OSError, http.client.HTTPException):
            # The server is gone, possibly after the status line and before the body (an
            # incomplete answer): unacknowledged, the client would retry.
            return
        if status == 200:
            acked.update(a["id"] for a in answer["acks"] if a["status"] == "accepted")


@pytest.mark.slow
def test_kill_9_mid_load_then_restart_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path,
) -> None:
    # Flushes every 0.3 s and every 50 events: the kill lands between log and commit too.
    home = make_home(tmp_path / "home", flush_interval_s=0.3, flush_max_events=50)
    token = home.token("alpha")
    server = Server(home.path).start()
    acked: set[str] = set()
    stop = threading.Event()
    try:
        threads = [
            threading.Thread(
                target=_load, args=(server.url, token, f"c{n}", acked, stop), daemon=True
            )
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acked) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # SIGKILL, mid-load
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert len(acked) >= 400
        left = [e for s in (home.path / "capture" / "wal").glob("*.wal") for e in read_segment(s)]
        assert left, "the kill should leave logged events for the restart to replay"
        server = Server(home.path).start()  # replays the log
        # The clients retry everything they sent; acknowledged ones are duplicates now.
        retried = [_session(event_id) for event_id in sorted(acked)[:100]]
        answer = call(server.url + "/v1/events", "POST", {"events": retried}, token=token)[1]
        assert {ack["status"] for ack in answer["acks"]} == {"duplicate"}
    finally:
        server.stop()  # SIGTERM flushes what is left
    warehouse = Warehouse(WarehouseSettings.local(home.path))
    rows = run_query(warehouse, "select record_id from bronze.records").column(0).to_pylist()
    assert len(rows) == len(set(rows)), "an event landed twice"
    expected = {capture_record_id("alpha", "session", event_id) for event_id in acked}
    assert expected <= set(rows), f"{len(expected - set(rows))} acknowledged events lost"
    assert not list((home.path / "capture" / "wal").glob("*.wal")), "log not trimmed"


@pytest.fixture
def small_log_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An in-thread service whose log holds 4 KB and never flushes."""
    home = make_home(tmp_path / "home", flush_interval_s=3600, max_wal_bytes=4096)
    app = create_app(load_settings(home.path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield url, home.token("alpha")
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_a_full_log_answers_429_with_retry_after(small_log_server: tuple[str, str]) -> None:
    url, token = small_log_server
    statuses = []
    for number in range(40):
        status, answer, headers = call(
            url + "/v1/events", "POST", {"events": [_session(f"full-{number}")]}, token=token
        )
        statuses.append(status)
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert "unflushed bytes" in answer["error"]
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    status, body, _ = call(url + "/metrics")
    assert "posttrain_backpressure_total 1" in body


@pytest.mark.slow
def test_otlp_spans_answered_before_a_kill_9_are_in_the_conversation_after_restart(
    tmp_path: Path,
) -> None:
    import json

    import yaml
    from otlp_traces import EXPECTED, json_body, semconv_trace

    home = make_home(tmp_path / "home", flush_interval_s=0.3)
    settings_file = home.path / "posttrain.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["otlp"] = {"idle_seconds": 3600}  # only the root completes the trace
    settings_file.write_text(yaml.safe_dump(settings))
    spans = semconv_trace()
    children = [span for span in spans if span.parent is not None]
    root = [span for span in spans if span.parent is None]
    trace_id = format(spans[0].context.trace_id, "032x")
    token = home.token("alpha")
    server = Server(home.path).start()
    try:
        status, _, _ = call(server.url + "/v1/traces", "POST", raw=json_body(children), token=token)
        assert status == 200  # answered: the children must survive what follows
        server.kill()  # SIGKILL mid-trace: before the root span came
        server = Server(home.path).start()  # reads the waiting spans back
        status, _, _ = call(server.url + "/v1/traces", "POST", raw=json_body(root), token=token)
        assert status == 200
    finally:
        server.stop()
    warehouse = Warehouse(WarehouseSettings.local(home.path))
    rows = run_query(warehouse, "select record_id, payload from bronze.records").to_pylist()
    (row,) = [r for r in rows if r["record_id"] == capture_record_id("alpha", "session", trace_id)]
    assert json.loads(row["payload"])["messages"] == EXPECTED
    assert not list((home.path / "capture" / "wal" / "otlp-spans").glob("*/*.spans"))
