"""A streamed chat completion, folded chunk by chunk, is exactly the non-streaming one."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from posttrain.platform.capture.proxy import (
    Exchange,
    SSEDecoder,
    StreamAssembler,
    assemble_stream,
    events_from_exchange,
)
from posttrain.serve.fake_openai import chunks, completion

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]

REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"model": "m", "messages": [{"role": "user", "content": "hello there"}]},
    "text with usage": {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
    },
    "one tool call": {
        "model": "m",
        "messages": [{"role": "user", "content": "find cats"}],
        "tools": TOOLS,
        "stream_options": {"include_usage": True},
    },
    "two parallel tool calls": {
        "model": "m",
        "messages": [{"role": "user", "content": "search twice"}],
        "tools": TOOLS,
    },
    "three choices": {"model": "m", "n": 3, "messages": [{"role": "user", "content": "x"}]},
    "three choices of tool calls": {
        "model": "m",
        "n": 3,
        "messages": [{"role": "user", "content": "search twice please"}],
        "tools": TOOLS,
        "stream_options": {"include_usage": True},
    },
    "after a tool result": {
        "model": "m",
        "messages": [
            {"role": "user", "content": "find"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_0_0", "content": "42 cats"},
        ],
    },
}


def _sse(request: dict[str, Any]) -> bytes:
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks(request, "chatcmpl-1")]
    return ("".join(events) + "data: [DONE]\n\n").encode()


def _expected(request: dict[str, Any]) -> dict[str, Any]:
    expected = completion(request, "chatcmpl-1")
    if not (request.get("stream_options") or {}).get("include_usage"):
        expected["usage"] = None  # a stream carries usage only when asked to
    return expected


@pytest.mark.parametrize("name", list(REQUESTS))
def test_streamed_chunks_reassemble_into_the_non_streaming_completion(name: str) -> None:
    request = REQUESTS[name]
    assembler = assemble_stream(_sse(request))
    assert assembler.done and assembler.finished
    assert assembler.completion() == _expected(request)


@pytest.mark.parametrize("name", ["one tool call", "three choices of tool calls"])
def test_reassembly_does_not_depend_on_where_the_bytes_are_split(name: str) -> None:
    body = _sse(REQUESTS[name])
    decoder, assembler = SSEDecoder(), StreamAssembler()
    for i in range(len(body)):  # one byte at a time: inside JSON, inside UTF-8, inside CRLF
        for data in decoder.feed(body[i : i + 1]):
            assembler.add_data(data)
    assert assembler.completion() == _expected(REQUESTS[name])


def test_crlf_and_cr_line_ends_comments_and_multi_line_data_follow_the_sse_grammar() -> None:
    body = b': keep-alive\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent: x\rdata: two\r\r'
    decoder = SSEDecoder()
    events = [e for i in range(len(body)) for e in decoder.feed(body[i : i + 1])]
    assert events == ['{"a":\n1}', "two"]


def test_an_event_without_its_final_blank_line_is_kept_at_close() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed(b"data: last")) == []
    assert list(decoder.close()) == ["last"]


def test_the_documented_openai_tool_call_stream_reassembles_to_its_message() -> None:
    # The shape of the OpenAI API reference's streamed function call: content null in the
    # first chunk, the id and name once, arguments split mid-token, finish in its own chunk.
    base = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1, "model": "g"}
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_xyz", "type": "function",
             "function": {"name": "get_current_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"loc'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'ation": "Bos'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": 'ton, MA"}'}}]}, None),
        ({}, "tool_calls"),
    ]  # fmt: skip
    assembler = StreamAssembler()
    for delta, finish in deltas:
        assembler.add_chunk(
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        )
    (choice,) = assembler.completion()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_xyz",
                "type": "function",
                "function": {
                    "name": "get_current_weather",
                    "arguments": '{"location": "Boston, MA"}',
                },
            }
        ],
    }


def test_logprobs_and_provider_extras_such_as_reasoning_content_are_concatenated() -> None:
    assembler = StreamAssembler()
    for text, reasoning in (("Hel", "thin"), ("lo", "king")):
        assembler.add_chunk(
            {
                "id": "c",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text, "reasoning_content": reasoning},
                        "logprobs": {"content": [{"token": text, "logprob": -0.1}]},
                    }
                ],
            }
        )
    choice = assembler.completion()["choices"][0]
    assert choice["message"]["content"] == "Hello"
    assert choice["message"]["reasoning_content"] == "thinking"
    assert [t["token"] for t in choice["logprobs"]["content"]] == ["Hel", "lo"]


def test_a_cut_stream_keeps_what_arrived_and_has_no_finish_reason() -> None:
    body = _sse(REQUESTS["one tool call"])
    cut = assemble_stream(body[: len(body) // 2])
    assert not cut.done and not cut.finished
    (choice,) = cut.completion()["choices"]
    assert choice["finish_reason"] is None
    full = _expected(REQUESTS["one tool call"])["choices"][0]["message"]["tool_calls"][0]
    partial = choice["message"]["tool_calls"][0]
    assert partial["id"] == full["id"]
    assert full["function"]["arguments"].startswith(partial["function"]["arguments"])


def test_an_error_event_inside_the_stream_is_kept_and_bad_events_are_counted() -> None:
    assembler = assemble_stream(b'data: {"error": {"message": "overloaded"}}\n\ndata: {oops\n\n')
    assert assembler.error == {"message": "overloaded"}
    assert assembler.unreadable == 1


def _exchange(response: dict[str, Any], status: int = 200, outcome: str = "completed") -> Exchange:
    return Exchange(
        request=REQUESTS["three choices of tool calls"],
        status=status,
        response=response,
        streamed=True,
        outcome=outcome,
        latency_ms=1.0,
    )


def test_each_choice_is_one_session_of_the_request_messages_and_its_answer() -> None:
    response = completion(REQUESTS["three choices of tool calls"], "chatcmpl-9")
    events = events_from_exchange(_exchange(response), fallback_id="x")
    assert [e["id"] for e in events] == ["chatcmpl-9", "chatcmpl-9:1", "chatcmpl-9:2"]
    first = events[0]
    assert first["type"] == "session"
    assert first["messages"][0] == {"role": "user", "content": "search twice please"}
    assert first["messages"][1]["tool_calls"] == response["choices"][0]["message"]["tool_calls"]
    assert "refusal" not in first["messages"][1]
    assert first["tools"] == TOOLS
    assert first["metadata"]["finish_reason"] == "tool_calls"
    assert first["metadata"]["params"] == {"model": "m", "n": 3}


def test_with_a_session_id_each_call_is_a_turn_of_that_session() -> None:
    response = completion(REQUESTS["one tool call"], "chatcmpl-7")
    exchange = replace(_exchange(response), request=REQUESTS["one tool call"])
    (event,) = events_from_exchange(exchange, fallback_id="x", session_id="agent-run-1")
    assert event["type"] == "turn"
    assert (event["session_id"], event["turn_id"]) == ("agent-run-1", "chatcmpl-7")
    assert event["messages"] == REQUESTS["one tool call"]["messages"]
    assert event["response"]["tool_calls"] == response["choices"][0]["message"]["tool_calls"]


def test_an_upstream_error_records_nothing() -> None:
    assert events_from_exchange(_exchange({"error": {}}, status=500), fallback_id="x") == []


def test_a_call_cut_before_any_output_records_nothing() -> None:
    cut = assemble_stream(
        b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    )
    exchange = _exchange(cut.completion(), outcome="client_disconnected")
    assert events_from_exchange(exchange, fallback_id="x") == []
