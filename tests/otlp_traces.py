"""GenAI agent traces made with the OpenTelemetry SDK, and their OTLP encodings."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SYSTEM = "You are a weather agent."
QUESTION = "Weather in Paris?"
CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
RESULT = '{"temp_c": 21}'
ANSWER = "It is 21 °C in Paris."

EXPECTED = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "content": RESULT, "tool_call_id": "call_1", "name": "get_weather"},
    {"role": "assistant", "content": ANSWER},
]


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _parts_messages(with_tool_turns: bool) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
    ]
    if with_tool_turns:
        messages += [
            {"role": "assistant", "parts": [{"type": "tool_call", **CALL}]},
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "call_1", "response": RESULT}],
            },
        ]
    return messages


def semconv_trace(*, tool_result_in_next_input: bool = True) -> list[ReadableSpan]:
    """An agent run in the newest convention: ``gen_ai.input.messages`` /
    ``gen_ai.output.messages`` attributes, a tool span between two chat spans, one
    unrelated HTTP span."""
    provider, exporter = _provider()
    tracer = provider.get_tracer("weather-agent")
    system = json.dumps([{"type": "text", "content": SYSTEM}])
    with tracer.start_as_current_span(
        "invoke_agent weather",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.system_instructions": system,
                "gen_ai.input.messages": json.dumps(_parts_messages(False)),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "tool_call", **CALL}],
                            "finish_reason": "tool_call",
                        }
                    ]
                ),
                "gen_ai.usage.input_tokens": 20,
                "gen_ai.usage.output_tokens": 5,
            },
        ):
            pass
        with (
            tracer.start_as_current_span(
                "execute_tool get_weather",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.id": "call_1",
                    "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                    "gen_ai.tool.call.result": RESULT,
                },
            ),
            tracer.start_as_current_span("GET /weather", attributes={"http.method": "GET"}),
        ):
            pass
        later_input = _parts_messages(tool_result_in_next_input)
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.system_instructions": system,
                "gen_ai.input.messages": json.dumps(later_input),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
                ),
                "gen_ai.usage.input_tokens": 40,
                "gen_ai.usage.output_tokens": 9,
            },
        ):
            pass
    return list(exporter.get_finished_spans())


def events_trace() -> list[ReadableSpan]:
    """The same run in the older convention: ``gen_ai.*.message`` and ``gen_ai.choice``
    span events, tool calls as JSON in the event attributes."""
    provider, exporter = _provider()
    tracer = provider.get_tracer("weather-agent")
    openai_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    with tracer.start_as_current_span("agent"):
        with tracer.start_as_current_span(
            "chat gpt-4o", attributes={"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}
        ) as span:
            span.add_event("gen_ai.system.message", {"content": SYSTEM})
            span.add_event("gen_ai.user.message", {"content": QUESTION})
            span.add_event(
                "gen_ai.choice",
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": json.dumps({"role": "assistant", "tool_calls": [openai_call]}),
                },
            )
        with tracer.start_as_current_span(
            "execute_tool get_weather",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1",
                "gen_ai.tool.call.result": RESULT,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}
        ) as span:
            span.add_event("gen_ai.system.message", {"content": SYSTEM})
            span.add_event("gen_ai.user.message", {"content": QUESTION})
            span.add_event("gen_ai.assistant.message", {"tool_calls": json.dumps([openai_call])})
            span.add_event("gen_ai.tool.message", {"content": RESULT, "id": "call_1"})
            span.add_event(
                "gen_ai.choice", {"index": 0, "message": json.dumps({"content": ANSWER})}
            )
    return list(exporter.get_finished_spans())


def indexed_trace() -> list[ReadableSpan]:
    """One chat span with OpenLLMetry's ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``."""
    provider, exporter = _provider()
    tracer = provider.get_tracer("weather-agent")
    with tracer.start_as_current_span(
        "openai.chat",
        attributes={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": SYSTEM,
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": QUESTION,
            "gen_ai.prompt.2.role": "assistant",
            "gen_ai.prompt.2.tool_calls.0.id": "call_1",
            "gen_ai.prompt.2.tool_calls.0.name": "get_weather",
            "gen_ai.prompt.2.tool_calls.0.arguments": '{"city": "Paris"}',
            "gen_ai.prompt.3.role": "tool",
            "gen_ai.prompt.3.content": RESULT,
            "gen_ai.prompt.3.tool_call_id": "call_1",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": ANSWER,
            "gen_ai.completion.0.finish_reason": "stop",
        },
    ):
        pass
    return list(exporter.get_finished_spans())


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP/HTTP protobuf body the SDK's exporter sends for ``spans``."""
    return bytes(encode_spans(spans).SerializeToString())


def json_body(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP/HTTP JSON body for ``spans``: protobuf's JSON mapping, ids in hex."""
    document = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()
