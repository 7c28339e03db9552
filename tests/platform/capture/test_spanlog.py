"""The span log: waiting OTLP spans survive a crash, a torn tail is not read back."""

from __future__ import annotations

from pathlib import Path

from posttrain.platform.capture.otlp import Span
from posttrain.platform.capture.spanlog import SpanLog


def _span(trace: str, span: str, parent: str = "") -> Span:
    return Span(
        trace_id=trace,
        span_id=span,
        parent_span_id=parent,
        name="chat",
        start_ns=1,
        end_ns=2,
        attributes={"gen_ai.operation.name": "chat", "blob": {"type": "blob", "content": "AA=="}},
        events=(("gen_ai.user.message", 1, {"content": "hi"}),),
        resource={"service.name": "agent"},
    )


def test_spans_read_back_equal_the_spans_appended_per_workspace_and_trace(tmp_path: Path) -> None:
    log = SpanLog(tmp_path / "spans")
    log.append("alpha", [_span("t1", "a", "r"), _span("t2", "b", "r")])
    log.append("alpha", [_span("t1", "c", "r")])
    log.append("beta", [_span("t1", "d", "r")])
    pending = {
        (ws, spans[0].trace_id): spans for ws, spans in SpanLog(tmp_path / "spans").pending()
    }
    assert pending[("alpha", "t1")] == [_span("t1", "a", "r"), _span("t1", "c", "r")]
    assert pending[("alpha", "t2")] == [_span("t2", "b", "r")]
    assert pending[("beta", "t1")] == [_span("t1", "d", "r")]


def test_a_torn_last_line_is_skipped_and_a_forgotten_trace_is_gone(tmp_path: Path) -> None:
    log = SpanLog(tmp_path / "spans")
    log.append("alpha", [_span("t1", "a", "r")])
    log.append("alpha", [_span("t2", "b", "r")])
    (path,) = [p for p in (tmp_path / "spans" / "alpha").iterdir() if b'"t1"' in p.read_bytes()]
    with path.open("ab") as handle:
        handle.write(b'0badc0de {"trace_id": "t1"')  # a crash mid-write: never answered
    log.forget("alpha", ["t2"])
    assert [(ws, [s.span_id for s in spans]) for ws, spans in log.pending()] == [("alpha", ["a"])]


def test_a_request_file_stays_until_every_trace_in_it_is_forgotten(tmp_path: Path) -> None:
    log = SpanLog(tmp_path / "spans")
    log.append("alpha", [_span("t1", "a", "r"), _span("t2", "b", "r")])
    log.forget("alpha", ["t1"])
    restarted = SpanLog(tmp_path / "spans")
    pending = [(ws, [s.span_id for s in spans]) for ws, spans in restarted.pending()]
    assert pending == [("alpha", ["a"]), ("alpha", ["b"])]  # t1 forgotten only in memory
    restarted.forget("alpha", ["t1", "t2"])
    assert not list((tmp_path / "spans").glob("*/*.spans"))
