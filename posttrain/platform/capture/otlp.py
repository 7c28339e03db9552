"""OTLP traces that follow the OpenTelemetry GenAI semantic conventions → conversations.

An agent already instrumented for a tracing backend sends its traces to posttrain by
changing the exporter's endpoint. This module is the pure part of that receiver (no web
framework): it decodes an OTLP ``ExportTraceServiceRequest`` (protobuf, or the OTLP JSON
encoding with hex trace and span ids), keeps the spans that carry GenAI data, and
assembles the spans of one trace into one conversation in the OpenAI chat format.

Where a span's messages can be, newest convention first (all are read, so traces from
older instrumentations work too):

* attributes ``gen_ai.system_instructions``, ``gen_ai.input.messages`` and
  ``gen_ai.output.messages`` (messages made of typed ``parts``: ``text``, ``tool_call``,
  ``tool_call_response``, ``reasoning``, and ``blob`` / ``file`` / ``uri`` kept as
  references, never inlined);
* span events ``gen_ai.system.message``, ``gen_ai.user.message``,
  ``gen_ai.assistant.message``, ``gen_ai.tool.message`` and ``gen_ai.choice``, their body
  in the event's attributes (or JSON in a ``gen_ai.event.content`` / ``body`` attribute);
* the indexed attributes ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` (OpenLLMetry),
  and the JSON attributes ``gen_ai.prompt`` / ``gen_ai.completion`` of older events.

A tool span (``gen_ai.operation.name = execute_tool``) becomes a ``tool`` turn answering the
assistant's call (``gen_ai.tool.call.id``), with ``gen_ai.tool.call.result`` as content,
unless a later inference span already carries that result in its input.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import PosttrainError

INFERENCE_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
TOOL_OPERATION = "execute_tool"
_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpSettings(FrozenConfig):
    """The ``otlp:`` section of the settings file: how ``POST /v1/traces`` holds traces."""

    idle_seconds: float = Field(default=30.0, gt=0)
    """A trace whose root span never arrives is assembled after this long without spans."""
    max_body_bytes: int = Field(default=32 << 20, ge=1024)
    """Largest (decompressed) export request; larger ones get 413."""


class OtlpDecodeError(PosttrainError):
    """An OTLP request body that is not an ``ExportTraceServiceRequest``."""


@dataclass(frozen=True)
class Span:
    """The part of an OTLP span the conversation is built from."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    events: tuple[tuple[str, int, Mapping[str, Any]], ...]  # (name, time_ns, attributes)
    resource: Mapping[str, Any]

    @property
    def operation(self) -> str | None:
        value = self.attributes.get("gen_ai.operation.name")
        return str(value) if value is not None else None

    @property
    def is_genai(self) -> bool:
        """Carries GenAI data: an operation name, messages, or ``gen_ai.*`` events."""
        return any(key.startswith("gen_ai.") for key in self.attributes) or any(
            name.startswith("gen_ai.") for name, _, _ in self.events
        )


@dataclass(frozen=True)
class DecodedExport:
    """The spans of one export request, and the spans refused (with why)."""

    spans: list[Span]
    rejected: int
    problems: list[str]


def decode_export(body: bytes, content_type: str) -> DecodedExport:
    """Decode an OTLP/HTTP traces request body.

    Args:
        body: the request body, already decompressed.
        content_type: ``application/x-protobuf`` or ``application/json``.

    Raises:
        OtlpDecodeError: the body is not an ``ExportTraceServiceRequest`` in that encoding.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    if "json" in content_type:
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OtlpDecodeError(f"OTLP JSON body: not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise OtlpDecodeError(
                f"OTLP JSON body: expected an object with resourceSpans, found "
                f"{type(document).__name__}"
            )
        try:
            json_format.ParseDict(_ids_to_base64(document), request, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise OtlpDecodeError(
                f"OTLP JSON body: not an ExportTraceServiceRequest: {exc}"
            ) from None
    else:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpDecodeError(f"OTLP protobuf body: cannot decode: {exc}") from None
    spans: list[Span] = []
    rejected = 0
    problems: list[str] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    rejected += 1
                    problems.append(
                        f"span {span.name!r}: trace id must be 16 bytes and span id 8, found "
                        f"{len(span.trace_id)} and {len(span.span_id)}"
                    )
                    continue
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        events=tuple(
                            (e.name, e.time_unix_nano, _attributes(e.attributes))
                            for e in span.events
                        ),
                        resource=resource,
                    )
                )
    return DecodedExport(spans, rejected, problems)


def _ids_to_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON spells trace and span ids in hex; protobuf's JSON mapping wants base64."""

    def convert(holder: dict[str, Any]) -> None:
        for key in _ID_FIELDS:
            value = holder.get(key)
            if isinstance(value, str) and value:
                try:
                    holder[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpDecodeError(
                        f"OTLP JSON body: {key} {value!r} is not hex (OTLP JSON spells ids "
                        "in hex, not base64)"
                    ) from None

    for resource_spans in document.get("resourceSpans") or []:
        for scope_spans in (resource_spans or {}).get("scopeSpans") or []:
            for span in (scope_spans or {}).get("spans") or []:
                if isinstance(span, dict):
                    convert(span)
                    for link in span.get("links") or []:
                        if isinstance(link, dict):
                            convert(link)
    return document


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {pair.key: _any_value(pair.value) for pair in pairs}


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return {"type": "blob", "content": base64.b64encode(value.bytes_value).decode()}
    return getattr(value, kind)


# --- messages --------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A JSON-valued attribute: instrumentations send a JSON string or a structured value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _arguments(value: Any) -> str:
    """Tool call arguments as the OpenAI API carries them: JSON text."""
    if isinstance(value, str):
        return value
    return json.dumps(value if value is not None else {}, ensure_ascii=False)


def _message(role: str, content: str, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": content}
    message.update({k: v for k, v in extra.items() if v not in (None, [], "")})
    return message


def _from_parts(message: Mapping[str, Any]) -> dict[str, Any]:
    """A semconv ``ChatMessage`` (role + typed parts) as an OpenAI chat message."""
    role = str(message.get("role") or "user")
    texts: list[str] = []
    references: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    tool_call_id = None
    reasoning: list[str] = []
    for part in message.get("parts") or []:
        if not isinstance(part, Mapping):
            texts.append(_text(part))
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(_text(part.get("content")))
        elif kind == "tool_call":
            tool_calls.append(
                {
                    "id": part.get("id"),
                    "type": "function",
                    "function": {
                        "name": str(part.get("name") or ""),
                        "arguments": _arguments(part.get("arguments")),
                    },
                }
            )
        elif kind == "tool_call_response":
            tool_call_id = part.get("id")
            texts.append(_text(part.get("response", part.get("result"))))
            role = "tool"
        elif kind == "reasoning":
            reasoning.append(_text(part.get("content")))
        elif kind in ("blob", "file", "uri"):
            # Images and files stay references: the bytes of a blob are not inlined.
            reference = {k: v for k, v in part.items() if k != "content"}
            if kind == "blob" and part.get("content"):
                digest = hashlib.sha256(_text(part["content"]).encode()).hexdigest()
                reference["sha256"] = digest
            references.append(reference)
        else:
            texts.append(_text(part.get("content", part)))
    return _message(
        role,
        "".join(texts),
        name=message.get("name"),
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        reasoning_content="".join(reasoning),
        references=references,
    )


def _from_openai(body: Mapping[str, Any], role: str) -> dict[str, Any]:
    """An event body or flattened message in the OpenAI-like shape of the older events."""
    content = body.get("content")
    if isinstance(content, list):  # a list of content parts
        content = "".join(
            _text(p.get("text", p.get("content"))) if isinstance(p, Mapping) else _text(p)
            for p in content
        )
    tool_calls = []
    for call in _json(body.get("tool_calls")) or []:
        if not isinstance(call, Mapping):
            continue
        function = _json(call.get("function")) or {}
        tool_calls.append(
            {
                "id": call.get("id"),
                "type": call.get("type") or "function",
                "function": {
                    "name": str(function.get("name") or call.get("name") or ""),
                    "arguments": _arguments(function.get("arguments", call.get("arguments"))),
                },
            }
        )
    return _message(
        str(body.get("role") or role),
        _text(content),
        tool_calls=tool_calls,
        tool_call_id=body.get("tool_call_id") or (body.get("id") if role == "tool" else None),
        name=body.get("name"),
    )


def _event_body(attributes: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("gen_ai.event.content", "body", "event.body"):
        if key in attributes:
            body = _json(attributes[key])
            if isinstance(body, Mapping):
                return dict(body)
    return dict(attributes)


def _indexed(attributes: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` style attributes, message by message."""
    rows: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = _INDEXED.match(key)
        if match and match.group(1) == kind:
            rows.setdefault(int(match.group(2)), {})[match.group(3)] = value
    messages = []
    for index in sorted(rows):
        row = rows[index]
        calls: dict[int, dict[str, Any]] = {}
        for key, value in row.items():
            if key.startswith("tool_calls."):
                _, number, name = key.split(".", 2)
                if number.isdigit():
                    calls.setdefault(int(number), {})[name] = value
        if calls:
            row["tool_calls"] = [calls[i] for i in sorted(calls)]
        default = "assistant" if kind == "completion" else "user"
        message = _from_openai(row, str(row.get("role") or default))
        messages.append((message, row.get("finish_reason")))
    return [m for m, _ in messages]


@dataclass(frozen=True)
class SpanMessages:
    """What one inference span says was sent and received."""

    input: list[dict[str, Any]]
    output: list[dict[str, Any]]


def span_messages(span: Span) -> SpanMessages:
    """The input and output messages of an inference span, from whichever convention the
    instrumentation followed (attributes first, then events, then indexed attributes)."""
    attrs = span.attributes
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    system = _json(attrs.get("gen_ai.system_instructions"))
    if system:
        parts = system if isinstance(system, list) else [system]
        inputs.append(_from_parts({"role": "system", "parts": parts}))
    for item in _list(_json(attrs.get("gen_ai.input.messages"))):
        inputs.append(_from_parts(item) if "parts" in item else _from_openai(item, "user"))
    for item in _list(_json(attrs.get("gen_ai.output.messages"))):
        if "parts" in item:
            outputs.append(_from_parts({"role": "assistant", **item}))
        else:
            outputs.append(_from_openai(item, "assistant"))
    if not inputs and not outputs:
        for name, _, event_attrs in span.events:
            body = _event_body(event_attrs)
            if name in _EVENT_ROLES:
                inputs.append(_from_openai(body, _EVENT_ROLES[name]))
            elif name == "gen_ai.choice":
                message = _json(body.get("message")) or body
                outputs.append(_from_openai(message, "assistant"))
            elif name == "gen_ai.content.prompt":
                for item in _list(_json(event_attrs.get("gen_ai.prompt"))):
                    inputs.append(_from_openai(item, "user"))
            elif name == "gen_ai.content.completion":
                for item in _list(_json(event_attrs.get("gen_ai.completion"))):
                    outputs.append(_from_openai(item, "assistant"))
    if not inputs and not outputs:
        inputs = _indexed(attrs, "prompt")
        outputs = _indexed(attrs, "completion")
    return SpanMessages(inputs, outputs)


def _list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


# --- assembly --------------------------------------------------------------------------


def _key(message: Mapping[str, Any]) -> tuple[Any, ...]:
    """Identity of a turn across spans: tool results by call id (instrumentations render
    their content differently), others by role, text and the calls they make."""
    if message.get("role") == "tool" and message.get("tool_call_id"):
        return ("tool", message["tool_call_id"])
    calls = tuple(
        (c.get("id"), c["function"]["name"], c["function"]["arguments"])
        for c in message.get("tool_calls") or []
    )
    return (message.get("role"), message.get("content") or "", calls)


@dataclass
class Conversation:
    """The conversation assembled from the spans of one trace."""

    trace_id: str
    messages: list[dict[str, Any]]
    tools: list[Any]
    metadata: dict[str, Any]
    span_ids: list[str] = field(default_factory=list)

    def event(self) -> dict[str, Any]:
        """The ``session`` event the capture service records: id ``otlp-<trace id>``,
        ``session_id`` the trace id (what a late outcome names), source the agent's
        ``service.name``."""
        event: dict[str, Any] = {
            "type": "session",
            "id": f"otlp-{self.trace_id}",
            "session_id": self.trace_id,
            "source": str(self.metadata.get("service_name") or "otlp")[:256],
            "messages": self.messages,
        }
        tools = [tool for tool in self.tools if isinstance(tool, dict)]
        if tools:
            event["tools"] = tools
        model = self.metadata.get("response_model") or self.metadata.get("model")
        if model:
            event["model"] = str(model)
        event["metadata"] = {"via": "otlp", "trace_id": self.trace_id, **self.metadata}
        return event


def assemble_trace(spans: Sequence[Span]) -> Conversation | None:
    """One conversation from the spans of one trace, or ``None`` when none carries
    GenAI messages or tool calls.

    Inference spans are read in start order. Each one's input usually repeats the history
    so far: the part already held is skipped and the rest appended; an input that does not
    extend the history (an instrumentation that sends only the new turns) adds the turns
    not yet present. Its output (choice 0) follows. A tool span adds a ``tool`` turn when
    it ends, unless that call's result is already there.
    """
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.end_ns, s.span_id))
    timeline: list[tuple[int, int, Span]] = []
    for span in ordered:
        operation = span.operation
        if operation == TOOL_OPERATION:
            timeline.append((span.end_ns, 1, span))
        elif span.is_genai and operation not in ("invoke_agent", "create_agent", "embeddings"):
            timeline.append((span.start_ns, 0, span))
    timeline.sort(key=lambda item: (item[0], item[1]))
    messages: list[dict[str, Any]] = []
    held: set[tuple[Any, ...]] = set()
    tools: list[Any] = []
    used: list[str] = []
    metadata: dict[str, Any] = {}
    usage = {"input_tokens": 0, "output_tokens": 0}

    def append(message: dict[str, Any]) -> None:
        messages.append(message)
        held.add(_key(message))

    for _, _, span in timeline:
        attrs = span.attributes
        if span.operation == TOOL_OPERATION:
            call_id = attrs.get("gen_ai.tool.call.id")
            if call_id is None or ("tool", call_id) in held:
                continue
            result = attrs.get("gen_ai.tool.call.result")
            if result is None:
                result = _tool_result_from_events(span)
            append(
                _message(
                    "tool",
                    _text(_json(result) if not isinstance(result, str) else result),
                    tool_call_id=call_id,
                    name=attrs.get("gen_ai.tool.name"),
                )
            )
            used.append(span.span_id)
            continue
        found = span_messages(span)
        if not found.input and not found.output:
            continue
        used.append(span.span_id)
        keys = [_key(m) for m in found.input]
        current = [_key(m) for m in messages]
        if keys[: len(current)] == current:
            for message in found.input[len(current) :]:
                append(message)
        else:
            for message, key in zip(found.input, keys, strict=True):
                if key not in held:
                    append(message)
        if found.output:
            append(found.output[0])
        definitions = _json(attrs.get("gen_ai.tool.definitions"))
        if isinstance(definitions, list) and not tools:
            tools = definitions
        for source, target in (
            ("gen_ai.request.model", "model"),
            ("gen_ai.response.model", "response_model"),
            ("gen_ai.provider.name", "provider"),
            ("gen_ai.system", "provider"),
            ("gen_ai.conversation.id", "conversation_id"),
            ("gen_ai.agent.name", "agent_name"),
        ):
            if source in attrs and target not in metadata:
                metadata[target] = attrs[source]
        for name in usage:
            value = attrs.get(f"gen_ai.usage.{name}")
            if isinstance(value, int | float):
                usage[name] += int(value)
    if not messages:
        return None
    for span in ordered:  # the agent span names the agent and conversation when chats don't
        if span.operation == "invoke_agent":
            for source, target in (
                ("gen_ai.agent.name", "agent_name"),
                ("gen_ai.conversation.id", "conversation_id"),
            ):
                if source in span.attributes:
                    metadata.setdefault(target, span.attributes[source])
    service = ordered[0].resource.get("service.name")
    metadata.update(
        service_name=service,
        usage=usage,
        spans=len(ordered),
        started_ns=min(s.start_ns for s in ordered),
        ended_ns=max(s.end_ns for s in ordered),
    )
    return Conversation(
        trace_id=ordered[0].trace_id,
        messages=messages,
        tools=tools,
        metadata=metadata,
        span_ids=sorted(s.span_id for s in ordered),
    )


def _tool_result_from_events(span: Span) -> Any:
    for name, _, attrs in span.events:
        if name == "gen_ai.tool.message":
            return _event_body(attrs).get("content")
    return ""


class TraceBuffer:
    """Spans grouped by trace until the trace is complete.

    A batching exporter sends a trace's spans as they end, over several requests; the
    root span (no parent) ends last. A trace is complete when its root span has arrived,
    or when no span of it arrived for ``idle_seconds`` (an agent whose root span is never
    exported). ``max_traces`` bounds memory: past it, the oldest trace is completed early.
    """

    def __init__(self, idle_seconds: float = 30.0, max_traces: int = 10_000) -> None:
        self.idle_seconds = idle_seconds
        self.max_traces = max_traces
        self._spans: dict[str, dict[str, Span]] = {}
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, spans: Iterable[Span], now: float) -> list[list[Span]]:
        """Buffer ``spans``; return the traces they complete (spans of each)."""
        rooted: list[str] = []
        for span in spans:
            trace = self._spans.setdefault(span.trace_id, {})
            trace[span.span_id] = span  # a retried export replaces, never duplicates
            self._seen[span.trace_id] = now
            if not span.parent_span_id and span.trace_id not in rooted:
                rooted.append(span.trace_id)
        done = [self._pop(trace_id) for trace_id in rooted]
        while len(self._spans) > self.max_traces:
            oldest = min(self._seen, key=self._seen.__getitem__)
            done.append(self._pop(oldest))
        return done

    def expire(self, now: float) -> list[list[Span]]:
        """The traces idle for ``idle_seconds`` or more, removed from the buffer."""
        idle = [t for t, seen in self._seen.items() if now - seen >= self.idle_seconds]
        return [self._pop(trace_id) for trace_id in idle]

    def drain(self) -> list[list[Span]]:
        """Every buffered trace (at shutdown)."""
        return [self._pop(trace_id) for trace_id in list(self._spans)]

    def _pop(self, trace_id: str) -> list[Span]:
        self._seen.pop(trace_id, None)
        return list(self._spans.pop(trace_id, {}).values())


def export_response(rejected: int, message: str, *, json_body: bool) -> tuple[bytes, str]:
    """The ``ExportTraceServiceResponse`` body (partial success when spans were refused)
    in the request's encoding, with its content type."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if json_body:
        return json_format.MessageToJson(response).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"


def status_body(code: int, message: str, *, json_body: bool) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` error body (OTLP/HTTP failures) in the request's encoding."""
    if json_body:
        return json.dumps({"code": code, "message": message}).encode(), "application/json"
    from google.rpc.status_pb2 import Status

    return Status(code=code, message=message).SerializeToString(), "application/x-protobuf"
