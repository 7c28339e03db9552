"""What the OpenAI-compatible capture proxy records: pure logic, no web framework.

A streamed chat completion arrives as Server-Sent Events, each ``data:`` line a
``chat.completion.chunk``; the proxy forwards the bytes untouched and, after the response is
sent, rebuilds from them exactly the ``chat.completion`` a non-streaming call returns
(:class:`StreamAssembler`). That is where capture tools most often lose data: tool calls
whose ``arguments`` arrive as JSON fragments split across chunks (keyed by the tool call's
``index``, the ``id`` and ``name`` only in the first fragment), several choices interleaved
(``n > 1``), the finish reason in a chunk of its own, and the usage in a last chunk with no
choices at all (``stream_options.include_usage``).

:func:`events_from_exchange` turns a request and its (rebuilt) response into the capture
events the proxy records: the request's messages and the assistant's message, in the
OpenAI chat format, with the request's tools and the response's model, usage and finish
reason beside them.

Example:
    >>> decoder, assembler = SSEDecoder(), StreamAssembler()
    >>> for data in decoder.feed(b'data: {"id":"c1","created":1,"model":"m","choices":'
    ...                          b'[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}'
    ...                          b'\\n\\ndata: [DONE]\\n\\n'):
    ...     assembler.add_data(data)
    >>> assembler.completion()["choices"][0]["message"]["content"]
    'hi'
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from posttrain.platform.config import FrozenConfig

DONE = "[DONE]"

# Keys of a choice's delta whose string fragments are *not* concatenated: they are sent once
# (or repeated unchanged) and identify rather than accumulate.
_IDENTITY_KEYS = frozenset({"role", "id", "type", "name", "index", "expires_at"})


class ProxySettings(FrozenConfig):
    """The ``proxy:`` section of the settings file: where the capture proxy forwards to.

    Upstream credentials never appear in a file: ``api_key_env`` names the environment
    variable that holds the upstream key, and ``workspace_key_env`` maps a workspace to
    its own variable (a workspace not listed uses ``api_key_env``; an unset variable
    forwards no ``Authorization`` header, as a local vLLM or llama.cpp server expects).
    The caller's own token is the workspace token, checked by the service and never
    forwarded.
    """

    upstream_url: str = "https://api.openai.com/v1"
    """The OpenAI-compatible base URL requests are forwarded to (``.../v1``)."""
    api_key_env: str = "OPENAI_API_KEY"
    """The environment variable holding the upstream key of workspaces not listed below."""
    workspace_key_env: dict[str, str] = Field(default_factory=dict)
    """Workspace → the environment variable holding that workspace's upstream key."""
    timeout_seconds: float = Field(default=600.0, gt=0)
    """Longest wait for upstream bytes (a slow generation streams for minutes)."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest wait to connect to the upstream; then 502/504 to the agent."""
    max_connections: int = Field(default=100, ge=1)
    """Pooled (kept-alive) connections to the upstream."""
    max_request_bytes: int = Field(default=32 << 20, ge=1024)
    """Largest request body forwarded; a larger one is answered 413 and not forwarded."""
    max_capture_bytes: int = Field(default=16 << 20, ge=1024)
    """Response bytes kept for capture per call; the agent always gets them all."""


class SSEDecoder:
    """Incremental Server-Sent Events decoder: bytes in (split anywhere), ``data`` out.

    Follows the event-stream grammar (WHATWG HTML, "Server-sent events"): lines end in LF,
    CRLF or CR; ``data:`` lines of one event are joined with LF; an empty line dispatches;
    comments (``:``) and other fields are skipped. A chunk boundary inside a line or inside
    a multi-byte UTF-8 character is fine.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> Iterator[str]:
        """The ``data`` of every event that ``chunk`` completes."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = False
        self._buffer += chunk
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return
            end, width = cut
            if width == 1 and self._buffer[end : end + 1] == b"\r" and end + 1 == len(self._buffer):
                self._pending_cr = True
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + width :]
            event = self._line(line)
            if event is not None:
                yield event

    def close(self) -> Iterator[str]:
        """The event left undispatched when the stream ended without its blank line."""
        if self._buffer:
            line, self._buffer = self._buffer.decode("utf-8", errors="replace"), b""
            self._line(line)
        if self._data:
            data, self._data = "\n".join(self._data), []
            yield data

    def _line(self, line: str) -> str | None:
        if not line:
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, 1
    if cr + 1 < len(buffer) and buffer[cr + 1 : cr + 2] == b"\n":
        return cr, 2
    return cr, 1


@dataclass
class _ToolCall:
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        call: dict[str, Any] = {"id": self.id, "type": self.type or "function"}
        call["function"] = {"name": self.name or "", "arguments": "".join(self.arguments)}
        call.update(self.extra)
        return call


@dataclass
class _Choice:
    index: int
    role: str | None = None
    content: list[str] | None = None
    refusal: list[str] | None = None
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    function_call: _ToolCall | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    logprobs: dict[str, list[Any]] | None = None
    saw_logprobs: bool = False

    def add(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta") or {}
        for key, value in delta.items():
            if key == "role":
                self.role = self.role or value
            elif key in ("content", "refusal"):
                if isinstance(value, str):
                    parts = getattr(self, key)
                    if parts is None:
                        parts = []
                        setattr(self, key, parts)
                    parts.append(value)
            elif key == "tool_calls":
                for position, fragment in enumerate(value or []):
                    self._tool_fragment(fragment, position)
            elif key == "function_call":
                if value:
                    self.function_call = self.function_call or _ToolCall()
                    _merge_call(self.function_call, {"function": value})
            else:
                self.extra[key] = _merge(self.extra.get(key), value, key)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        if "logprobs" in choice:
            self.saw_logprobs = True
            logprobs = choice["logprobs"]
            if logprobs:
                merged = self.logprobs if self.logprobs is not None else {}
                for name, items in logprobs.items():
                    if items is not None:
                        merged.setdefault(name, []).extend(items)
                    else:
                        merged.setdefault(name, None)  # type: ignore[arg-type]
                self.logprobs = merged

    def _tool_fragment(self, fragment: Mapping[str, Any], position: int) -> None:
        # ``index`` says which call a fragment continues; a provider that omits it sends
        # whole calls, one per position.
        index = fragment.get("index", position)
        call = self.tool_calls.get(index)
        if call is None:
            call = self.tool_calls[index] = _ToolCall()
        _merge_call(call, fragment)

    def result(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": self.role or "assistant",
            "content": None if self.content is None else "".join(self.content),
            "refusal": None if self.refusal is None else "".join(self.refusal),
        }
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].message() for i in sorted(self.tool_calls)]
        if self.function_call is not None:
            call = self.function_call.message()["function"]
            message["function_call"] = call
        message.update(self.extra)
        logprobs: dict[str, Any] | None = None
        if self.logprobs is not None:
            logprobs = {"content": None, "refusal": None, **self.logprobs}
        return {
            "index": self.index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }


def _merge_call(call: _ToolCall, fragment: Mapping[str, Any]) -> None:
    for key, value in fragment.items():
        if key == "index" or value is None:
            continue
        if key == "id":
            call.id = call.id or value
        elif key == "type":
            call.type = call.type or value
        elif key == "function":
            if value.get("name"):
                call.name = call.name or value["name"]
            if value.get("arguments"):
                call.arguments.append(value["arguments"])
        else:
            call.extra[key] = _merge(call.extra.get(key), value, key)


def _merge(old: Any, new: Any, key: str) -> Any:
    """Fold one delta value into what came before: text fragments concatenate, lists
    extend, objects merge key by key; identities and other scalars keep the first."""
    if old is None:
        return new
    if new is None:
        return old
    if isinstance(old, str) and isinstance(new, str):
        return old if key in _IDENTITY_KEYS else old + new
    if isinstance(old, list) and isinstance(new, list):
        return [*old, *new]
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for name, value in new.items():
            merged[name] = _merge(merged.get(name), value, name)
        return merged
    return old if key in _IDENTITY_KEYS else new


class StreamAssembler:
    """Fold the chunks of one streamed chat completion into the ``chat.completion`` a
    non-streaming call with the same output returns.

    Feed each event's ``data`` (:meth:`add_data`) or parsed chunk (:meth:`add_chunk`);
    :meth:`completion` may be called at any point: after a client disconnect it holds what
    had arrived, with ``finish_reason`` ``None`` on the unfinished choices.
    """

    def __init__(self) -> None:
        self._top: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self.usage: dict[str, Any] | None = None
        self.done = False  # saw ``data: [DONE]``
        self.error: dict[str, Any] | None = None  # an ``error`` event inside the stream
        self.chunks = 0
        self.unreadable = 0  # events that were not JSON objects

    def add_data(self, data: str) -> None:
        """One SSE event's ``data``: a JSON chunk, or ``[DONE]``."""
        if data.strip() == DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            self.unreadable += 1
            return
        if not isinstance(chunk, dict):
            self.unreadable += 1
            return
        self.add_chunk(chunk)

    def add_chunk(self, chunk: Mapping[str, Any]) -> None:
        """One parsed ``chat.completion.chunk``."""
        self.chunks += 1
        if "error" in chunk and "choices" not in chunk:
            self.error = dict(chunk["error"]) if isinstance(chunk["error"], dict) else dict(chunk)
            return
        for key, value in chunk.items():
            if key in ("choices", "object"):
                continue
            if key == "usage":
                if value is not None:
                    self.usage = value
            elif value is not None or key not in self._top:
                # ids and metadata repeat on every chunk; a later non-null value wins
                # (``system_fingerprint`` may be null on the first chunks only).
                self._top[key] = value
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice(index)
            state.add(choice)

    @property
    def finished(self) -> bool:
        """Every choice has a finish reason (the stream ran to its end)."""
        return bool(self._choices) and all(c.finish_reason for c in self._choices.values())

    def completion(self) -> dict[str, Any]:
        """The ``chat.completion`` object the chunks so far amount to."""
        result: dict[str, Any] = {
            "id": self._top.get("id"),
            "object": "chat.completion",
            "created": self._top.get("created"),
            "model": self._top.get("model"),
            "choices": [self._choices[i].result() for i in sorted(self._choices)],
            "usage": self.usage,
        }
        for key, value in self._top.items():
            result.setdefault(key, value)
        return result


def assemble_stream(body: bytes) -> StreamAssembler:
    """The whole of a recorded event-stream body, folded (see :class:`StreamAssembler`)."""
    decoder, assembler = SSEDecoder(), StreamAssembler()
    for data in decoder.feed(body):
        assembler.add_data(data)
    for data in decoder.close():
        assembler.add_data(data)
    return assembler


@dataclass(frozen=True)
class Exchange:
    """One proxied call as the proxy saw it, recorded after the response went out."""

    request: Mapping[str, Any]
    status: int
    response: Mapping[str, Any] | None  # the (rebuilt) chat.completion, or the error body
    streamed: bool
    outcome: str  # completed | client_disconnected | upstream_broke_off | capture_truncated
    latency_ms: float
    upstream_request_id: str | None = None


def events_from_exchange(
    exchange: Exchange,
    *,
    fallback_id: str,
    session_id: str | None = None,
    source: str = "openai-proxy",
) -> list[dict[str, Any]]:
    """The capture events one exchange records (the JSON the capture service accepts).

    One event per choice that produced an assistant message (``n > 1`` gives several;
    an upstream error or a call cut before any output gives none). Without a
    ``session_id`` each call is a ``session`` whose id is the completion id (what the
    agent sees as ``response.id``; ``<id>:<i>`` for choice ``i > 0``), so a late outcome
    names it as ``session_id``. With one (the ``X-Posttrain-Session`` header), each call is
    a ``turn`` of that session with that id as ``turn_id``: the request's messages, and
    the assistant's message as ``response``.

    ``metadata`` says what the call was (params, status, outcome, finish reason, usage,
    latency), so a curator can tell a finished answer from one cut by a client disconnect.
    """
    if exchange.status >= 400 or not exchange.response:
        return []
    response = exchange.response
    choices = response.get("choices")
    if not isinstance(choices, list):
        return []
    request = exchange.request
    messages = [dict(m) for m in request.get("messages") or [] if isinstance(m, Mapping)]
    params = {
        key: value
        for key, value in request.items()
        if key not in ("messages", "tools", "stream", "stream_options")
    }
    completion_id = str(response.get("id") or fallback_id)
    model = response.get("model") or request.get("model")
    events = []
    for choice in choices:
        if not isinstance(choice, Mapping):
            continue
        index = int(choice.get("index", 0))
        message = _clean_message(dict(choice.get("message") or {}))
        if message.get("content") is None and not message.get("tool_calls"):
            continue
        event_id = completion_id if index == 0 else f"{completion_id}:{index}"
        event: dict[str, Any] = {"id": event_id, "source": source}
        if session_id is None:
            event.update(type="session", messages=[*messages, message])
        else:
            event.update(
                type="turn",
                session_id=session_id,
                turn_id=event_id,
                messages=messages,
                response=message,
            )
        if request.get("tools"):
            event["tools"] = request["tools"]
        if model:
            event["model"] = str(model)
        event["metadata"] = {
            "via": "openai_proxy",
            "completion_id": response.get("id"),
            "params": params,
            "status": exchange.status,
            "outcome": exchange.outcome,
            "streamed": exchange.streamed,
            "finish_reason": choice.get("finish_reason"),
            "choice": index,
            "n_choices": len(choices),
            "usage": response.get("usage"),
            "latency_ms": round(exchange.latency_ms, 3),
            "upstream_request_id": exchange.upstream_request_id,
        }
        events.append(event)
    return events


def _clean_message(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant message without the API's always-null fields (``refusal: null``)."""
    return {k: v for k, v in message.items() if v is not None and v != []}
