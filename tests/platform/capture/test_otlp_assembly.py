"""OTLP GenAI traces → one conversation per trace, tool spans as tool turns."""

from __future__ import annotations

import json

import pytest
from otlp_traces import (
    EXPECTED,
    events_trace,
    indexed_trace,
    json_body,
    protobuf_body,
    semconv_trace,
)

from posttrain.platform.capture.otlp import (
    OtlpDecodeError,
    TraceBuffer,
    assemble_trace,
    decode_export,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_a_semconv_trace_in_either_encoding_is_one_conversation_with_its_tool_turn(
    encoding: str,
) -> None:
    spans = semconv_trace()
    body = protobuf_body(spans) if encoding == PROTOBUF else json_body(spans)
    decoded = decode_export(body, encoding)
    assert decoded.rejected == 0 and len(decoded.spans) == len(spans) == 5
    conversation = assemble_trace(decoded.spans)
    assert conversation is not None
    assert conversation.messages == EXPECTED
    assert conversation.trace_id == format(spans[0].context.trace_id, "032x")
    assert conversation.metadata["model"] == "gpt-4o"
    assert conversation.metadata["provider"] == "openai"
    assert conversation.metadata["agent_name"] == "weather"
    assert conversation.metadata["service_name"] == "weather-agent"
    assert conversation.metadata["usage"] == {"input_tokens": 60, "output_tokens": 14}


def test_both_encodings_give_the_same_session_event() -> None:
    spans = semconv_trace()
    from_protobuf = assemble_trace(decode_export(protobuf_body(spans), PROTOBUF).spans)
    from_json = assemble_trace(decode_export(json_body(spans), JSON).spans)
    assert from_protobuf is not None and from_json is not None
    assert from_protobuf.event() == from_json.event()
    assert from_protobuf.event()["id"] == f"otlp-{from_protobuf.trace_id}"


def test_a_tool_span_supplies_the_tool_turn_when_no_later_input_repeats_it() -> None:
    spans = semconv_trace(tool_result_in_next_input=False)
    conversation = assemble_trace(decode_export(protobuf_body(spans), PROTOBUF).spans)
    assert conversation is not None
    assert conversation.messages == EXPECTED


def test_older_message_events_become_the_same_conversation() -> None:
    conversation = assemble_trace(decode_export(protobuf_body(events_trace()), PROTOBUF).spans)
    assert conversation is not None
    assert [m["role"] for m in conversation.messages] == [m["role"] for m in EXPECTED]
    assert conversation.messages[2]["tool_calls"] == EXPECTED[2]["tool_calls"]
    assert conversation.messages[3]["tool_call_id"] == "call_1"
    assert conversation.messages[-1]["content"] == EXPECTED[-1]["content"]


def test_openllmetry_indexed_attributes_become_a_conversation() -> None:
    conversation = assemble_trace(decode_export(protobuf_body(indexed_trace()), PROTOBUF).spans)
    assert conversation is not None
    assert [m["role"] for m in conversation.messages] == [m["role"] for m in EXPECTED]
    assert conversation.messages[2]["tool_calls"] == EXPECTED[2]["tool_calls"]


def test_a_trace_without_genai_spans_is_no_conversation() -> None:
    spans = [s for s in semconv_trace() if s.name == "GET /weather"]
    assert assemble_trace(decode_export(protobuf_body(spans), PROTOBUF).spans) is None


def test_images_stay_references_not_inlined_bytes() -> None:
    spans = decode_export(protobuf_body(semconv_trace()), PROTOBUF).spans
    chat = next(s for s in spans if s.name == "chat gpt-4o")
    blob = {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "AAAA" * 99}
    message = [{"role": "user", "parts": [{"type": "text", "content": "see"}, blob]}]
    attributes = {**chat.attributes, "gen_ai.input.messages": json.dumps(message)}
    from dataclasses import replace

    conversation = assemble_trace([replace(chat, attributes=attributes)])
    assert conversation is not None
    (reference,) = conversation.messages[1]["references"]
    assert "content" not in reference and len(reference["sha256"]) == 64
    assert reference["mime_type"] == "image/png"


def test_a_trace_split_over_exports_completes_when_its_root_arrives() -> None:
    spans = decode_export(protobuf_body(semconv_trace()), PROTOBUF).spans
    children = [s for s in spans if s.parent_span_id]
    root = [s for s in spans if not s.parent_span_id]
    buffer = TraceBuffer(idle_seconds=30)
    assert buffer.add(children[:2], now=0) == []
    assert buffer.add(children[2:] + children[:1], now=1) == []  # a retried span: no twin
    (trace,) = buffer.add(root, now=2)
    assert sorted(s.span_id for s in trace) == sorted(s.span_id for s in spans)
    assert len(buffer) == 0


def test_a_trace_whose_root_never_comes_completes_when_idle() -> None:
    spans = decode_export(protobuf_body(semconv_trace()), PROTOBUF).spans
    buffer = TraceBuffer(idle_seconds=30)
    buffer.add([s for s in spans if s.parent_span_id], now=0)
    assert buffer.expire(now=29) == []
    (trace,) = buffer.expire(now=31)
    assert len(trace) == 4


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        (b"\xff\x00garbage", PROTOBUF, "cannot decode"),
        (b"[1, 2]", JSON, "expected an object"),
        (b"{not json", JSON, "not JSON"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAAA","spanId":"x"}]}]}]}',
            JSON,
            "is not hex",
        ),
    ],
)
def test_a_body_that_is_not_an_export_request_says_why(
    body: bytes, encoding: str, expected: str
) -> None:
    with pytest.raises(OtlpDecodeError, match=expected):
        decode_export(body, encoding)


def test_spans_with_malformed_ids_are_refused_and_the_others_kept() -> None:
    document = json.loads(json_body(semconv_trace()))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceId"] = "abcd"
    decoded = decode_export(json.dumps(document).encode(), JSON)
    assert decoded.rejected == 1 and len(decoded.spans) == 4
    assert "trace id must be 16 bytes" in decoded.problems[0]
