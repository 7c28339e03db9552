"""Parse a bronze payload in any supported chat format into canonical messages.

Parsing checks structure only: the payload is a JSON object, the format's keys are there
with the right types, every turn becomes a :class:`~posttrain.platform.messages.Message`.
Whether the roles alternate sensibly or a turn is empty is for the quality filters; a
record that cannot be read as a list of messages at all raises
``RecordError(RejectionReason.MALFORMED, detail)``, the detail saying what was expected.

Role mapping:
    * OpenAI: roles are kept; the legacy ``function`` role becomes ``tool`` and
      ``developer`` becomes ``system``; a legacy ``function_call`` becomes a tool call.
    * ShareGPT: ``human``/``user`` → user, ``gpt``/``assistant``/``chatgpt``/``bard``/
      ``bing``/``model`` → assistant, ``system`` → system, ``function_call`` → an
      assistant turn whose ``value`` is the JSON call, ``observation``/``tool``/
      ``function_response`` → tool. A top-level ``system`` string becomes the first turn.
    * Alpaca: user = ``instruction`` + blank line + ``input`` (when not empty), then
      assistant = ``output``; optional ``system`` and ``history`` (``[[user, assistant],
      ...]``) come first.
    * prompt/completion: each side is a string (a user / an assistant turn) or an
      OpenAI message list (TRL's conversational prompt-completion).

Example:
    >>> record = '{"instruction": "Add 2 and 3.", "output": "5"}'
    >>> [m["role"] for m in parse_payload(record, ChatFormat.ALPACA)]
    ['user', 'assistant']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from posttrain.platform.errors import RecordError
from posttrain.platform.ingest.formats import CHAT_FORMATS, ChatFormat, detect_format, json_error
from posttrain.platform.messages import Message, Role, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE, PROVENANCE_FIELDS, RejectionReason
from posttrain.platform.steps import StepResult, as_table, rejection_rows

# What :class:`ParseStep` keeps: the bronze id, the canonical messages and provenance,
# with the line the record was read from so that later stages' rejections can name it.
PARSED_RECORDS = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("messages", MESSAGES_TYPE),
        *PROVENANCE_FIELDS,
        pa.field("row_index", pa.int64()),
    ]
)
_PROVENANCE_NAMES = [f.name for f in PROVENANCE_FIELDS]
# What a row must show to be parsed, or to be named in a rejection.
_ROW_COLUMNS = (
    "record_id",
    "payload",
    "payload_bytes",
    "format",
    "source",
    "batch_id",
    "source_uri",
    "row_index",
)

_OPENAI_LEGACY_ROLES = {"function": Role.TOOL.value, "developer": Role.SYSTEM.value}

SHAREGPT_ROLES: dict[str, str] = {
    "human": Role.USER,
    "user": Role.USER,
    "gpt": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "chatgpt": Role.ASSISTANT,
    "bard": Role.ASSISTANT,
    "bing": Role.ASSISTANT,
    "model": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "function_call": Role.ASSISTANT,
    "observation": Role.TOOL,
    "tool": Role.TOOL,
    "function_response": Role.TOOL,
}


def malformed(detail: str) -> RecordError:
    """The error for a record that cannot be read as a conversation."""
    return RecordError(RejectionReason.MALFORMED, detail)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _found(record: dict[str, Any]) -> str:
    """What the record looks like instead, for 'has no X' details."""
    other = detect_format(record)
    if other is not None:
        return f"its keys look like {other.value}"
    return "keys: " + (", ".join(repr(key) for key in sorted(record)[:8]) or "none")


def _optional_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise malformed(f"{where} '{key}' must be a string, found {_type_name(value)}")


# -- OpenAI messages ------------------------------------------------------------------


def _content_text(content: Any, where: str) -> str:
    """Message content as text: a string, null (a turn that only calls tools) or text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_part(part, where) for part in content)
    raise malformed(
        f"{where} 'content' must be a string, null or a list of text parts, "
        f"found {_type_name(content)}"
    )


def _text_part(part: Any, where: str) -> str:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        text: str = part["text"]
        return text
    kind = part.get("type") if isinstance(part, dict) else _type_name(part)
    raise malformed(f"{where} has a content part of type {kind!r}; only text parts are supported")


def _arguments_text(arguments: Any) -> str:
    """Tool-call arguments as JSON text, as the OpenAI API sends them."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps({} if arguments is None else arguments, ensure_ascii=False)


def _tool_call(raw: Any, where: str) -> ToolCall:
    """An OpenAI tool call, or a flat ``{"name", "arguments"}`` (legacy and ShareGPT calls)."""
    function = raw.get("function", raw) if isinstance(raw, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise malformed(f"{where} is not a tool call with a function 'name'")
    call_id, kind = raw.get("id"), raw.get("type")
    return ToolCall(
        id=call_id if isinstance(call_id, str) else None,
        type=kind if isinstance(kind, str) and kind else "function",
        function={"name": name, "arguments": _arguments_text(function.get("arguments"))},
    )


def _tool_calls(raw: dict[str, Any], where: str) -> list[ToolCall]:
    calls = raw.get("tool_calls")
    if calls is None:
        legacy = raw.get("function_call")
        return [] if legacy is None else [_tool_call(legacy, f"{where} 'function_call'")]
    if not isinstance(calls, list):
        raise malformed(f"{where} 'tool_calls' must be a list, found {_type_name(calls)}")
    return [_tool_call(call, f"{where} tool call {i}") for i, call in enumerate(calls, start=1)]


def parse_openai_message(raw: Any, where: str) -> Message:
    """One OpenAI chat message; ``where`` names it in errors, e.g. ``"message 3"``."""
    if not isinstance(raw, dict):
        raise malformed(f"{where} must be an object, found {_type_name(raw)}")
    role = raw.get("role")
    if not isinstance(role, str):
        raise malformed(f"{where} has no 'role' string")
    return make_message(
        _OPENAI_LEGACY_ROLES.get(role, role),
        _content_text(raw.get("content"), where),
        name=_optional_str(raw, "name", where),
        tool_calls=_tool_calls(raw, where),
        tool_call_id=_optional_str(raw, "tool_call_id", where),
    )


def _openai_list(value: Any, what: str) -> list[Message]:
    if not isinstance(value, list):
        raise malformed(f"{what} must be a list of messages, found {_type_name(value)}")
    return [parse_openai_message(raw, f"message {i}") for i, raw in enumerate(value, start=1)]


def _require(record: dict[str, Any], fmt: ChatFormat, key: str) -> Any:
    """``record[key]``, or the error naming the missing key and what the record has instead."""
    if key not in record:
        raise malformed(f"{fmt.value} record has no {key!r} ({_found(record)})")
    return record[key]


def _parse_openai(record: dict[str, Any]) -> list[Message]:
    return _openai_list(_require(record, ChatFormat.OPENAI, "messages"), "'messages'")


# -- ShareGPT -------------------------------------------------------------------------


def _sharegpt_function_call(value: str, where: str) -> list[ToolCall]:
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError:
        raise malformed(f"{where} ('function_call') is not JSON: {value[:60]!r}") from None
    calls = decoded if isinstance(decoded, list) else [decoded]
    return [_tool_call(call, where) for call in calls]


def _sharegpt_turn(raw: Any, where: str) -> Message:
    if not isinstance(raw, dict):
        raise malformed(f"{where} must be an object, found {_type_name(raw)}")
    speaker = raw.get("from", raw.get("role"))
    value = raw.get("value", raw.get("content"))
    if not isinstance(speaker, str):
        raise malformed(f"{where} has no 'from' string")
    if not isinstance(value, str):
        raise malformed(f"{where} 'value' must be a string, found {_type_name(value)}")
    # Unknown speakers keep their name; the role filter rejects them with a clearer reason.
    role = SHAREGPT_ROLES.get(speaker.lower(), speaker)
    if speaker.lower() == "function_call":
        return make_message(role, "", tool_calls=_sharegpt_function_call(value, where))
    return make_message(role, value)


def _parse_sharegpt(record: dict[str, Any]) -> list[Message]:
    turns = _require(record, ChatFormat.SHAREGPT, "conversations")
    if not isinstance(turns, list):
        raise malformed(
            f"sharegpt 'conversations' must be a list of turns, found {_type_name(turns)}"
        )
    system = _optional_str(record, "system", "sharegpt record")
    messages = [make_message(Role.SYSTEM, system)] if system else []
    messages += [_sharegpt_turn(raw, f"turn {i}") for i, raw in enumerate(turns, start=1)]
    return messages


# -- Alpaca ---------------------------------------------------------------------------


def _alpaca_history(history: Any) -> list[Message]:
    if history is None:
        return []
    if not isinstance(history, list):
        raise malformed(
            "alpaca 'history' must be a list of [user, assistant] pairs, "
            f"found {_type_name(history)}"
        )
    messages = []
    for i, pair in enumerate(history, start=1):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        ):
            raise malformed(f"alpaca history entry {i} must be a [user, assistant] pair of strings")
        messages += [make_message(Role.USER, pair[0]), make_message(Role.ASSISTANT, pair[1])]
    return messages


def _parse_alpaca(record: dict[str, Any]) -> list[Message]:
    for key in ("instruction", "output"):
        _require(record, ChatFormat.ALPACA, key)
    instruction = _optional_str(record, "instruction", "alpaca record") or ""
    output = _optional_str(record, "output", "alpaca record") or ""
    extra = _optional_str(record, "input", "alpaca record")
    system = _optional_str(record, "system", "alpaca record")
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages = [make_message(Role.SYSTEM, system)] if system else []
    messages += _alpaca_history(record.get("history"))
    return [*messages, make_message(Role.USER, prompt), make_message(Role.ASSISTANT, output)]


# -- prompt / completion --------------------------------------------------------------


def _side(record: dict[str, Any], key: str, role: Role) -> list[Message]:
    value = record[key]
    if isinstance(value, str):
        return [make_message(role, value)]
    if isinstance(value, list):
        return _openai_list(value, f"{key!r}")
    raise malformed(
        f"prompt_completion {key!r} must be a string or a list of messages, "
        f"found {_type_name(value)}"
    )


def _parse_prompt_completion(record: dict[str, Any]) -> list[Message]:
    for key in ("prompt", "completion"):
        _require(record, ChatFormat.PROMPT_COMPLETION, key)
    return _side(record, "prompt", Role.USER) + _side(record, "completion", Role.ASSISTANT)


def _parse_rollout(record: dict[str, Any]) -> list[Message]:
    # Silver leaves rollouts to silver.rollouts (they need a reward and a verifier); this
    # reads one as the conversation it holds, for tools that parse any bronze payload.
    if "prompt" not in record:
        raise malformed(
            "rollout record has no 'prompt'; silver.rollouts takes it from gold.rl_prompts"
        )
    return _parse_prompt_completion(record)


PARSERS: dict[ChatFormat, Callable[[dict[str, Any]], list[Message]]] = {
    ChatFormat.ROLLOUT: _parse_rollout,
    ChatFormat.OPENAI: _parse_openai,
    ChatFormat.SHAREGPT: _parse_sharegpt,
    ChatFormat.ALPACA: _parse_alpaca,
    ChatFormat.PROMPT_COMPLETION: _parse_prompt_completion,
}


_LONE_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")

MAX_JSON_DEPTH = 200
"""Deepest nesting of arrays and objects a payload may have. Chat records nest a dozen
levels (tool-call arguments included); far deeper JSON is an attack or a bug, and Python's
decoder, like every later stage, recurses once per level."""

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(payload: str) -> int:
    """How deep the arrays and objects of ``payload`` nest, without decoding it (brackets
    inside strings do not count); 0 when it cannot exceed :data:`MAX_JSON_DEPTH`."""
    if payload.count("[") + payload.count("{") <= MAX_JSON_DEPTH:
        return 0
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", payload)).encode("ascii")
    codes = np.frombuffer(brackets, dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    return int(np.cumsum(np.where(opens, 1, -1)).max(initial=0))


def _lone_surrogate(value: Any) -> str | None:
    """The first string of a decoded record holding a lone UTF-16 surrogate, escaped."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                return item[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def decode_record(payload: str) -> dict[str, Any]:
    """The payload as a JSON object, or the ``malformed`` error saying why not.

    Besides invalid JSON, refuses JSON nested deeper than :data:`MAX_JSON_DEPTH` and
    strings holding a lone UTF-16 surrogate (JSON's ``"\\ud800"`` decodes, but is not
    Unicode text and cannot be stored).
    """
    depth = json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise malformed(
            f"JSON nests {depth:,} levels deep; expected at most {MAX_JSON_DEPTH} (MAX_JSON_DEPTH)"
        )
    try:
        record = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise malformed(f"line is not valid JSON: {json_error(exc)}") from None
    if not isinstance(record, dict):
        raise malformed(f"record must be a JSON object, found a {_type_name(record)}")
    # Only payloads spelling a surrogate escape can decode to one: the scan stays rare.
    if _LONE_SURROGATE_HINT.search(payload):
        surrogate = _lone_surrogate(record)
        if surrogate is not None:
            raise malformed(
                f"a string holds the lone UTF-16 surrogate {surrogate!r}, which is not valid "
                "Unicode text (expected a surrogate pair or another character)"
            )
    return record


def undecodable_payload(payload_bytes: bytes | None) -> RecordError:
    """The ``malformed`` error for a bronze row kept as bytes (not valid UTF-8), or none."""
    if payload_bytes is None:
        return malformed("bronze row has no payload")
    try:
        payload_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return malformed(f"not valid UTF-8 at byte offset {exc.start}")
    # Ingest stores bytes only when they do not decode; say so if that ever fails.
    return malformed("payload kept as bytes although it is valid UTF-8")


def parse_payload(payload: str, fmt: ChatFormat) -> list[Message]:
    """Parse one bronze payload written in ``fmt`` into canonical messages.

    Raises:
        RecordError: reason ``malformed``, with a detail naming what was expected, e.g.
            ``"sharegpt record has no 'conversations' list (its keys look like alpaca)"``.

    Example:
        >>> record = '{"prompt": "2+2?", "completion": "4"}'
        >>> parse_payload(record, ChatFormat.PROMPT_COMPLETION)[1]["content"]
        '4'
    """
    parser = PARSERS.get(fmt)
    if parser is None:
        raise malformed(f"{fmt.value} is a preference format: silver.preferences builds it")
    return parser(decode_record(payload))


def _format_of(value: str | None) -> ChatFormat:
    if value is not None and value in ChatFormat.__members__.values():
        return ChatFormat(value)
    known = ", ".join(fmt.value for fmt in ChatFormat if fmt in CHAT_FORMATS)
    raise malformed(f"bronze format {value!r} is not one of {known}")


@dataclass(frozen=True)
class ParseStep:
    """The first silver step: bronze rows (``BRONZE_RECORDS``) → canonical messages.

    Kept rows have the :data:`PARSED_RECORDS` schema; rows that do not parse become
    ``malformed`` rejections. Stateless and picklable, so executors can ship it to Ray.

    Example:
        >>> result = ParseStep()(bronze_batch)  # doctest: +SKIP
        >>> result.kept.column_names[:2]  # doctest: +SKIP
        ['record_id', 'messages']
    """

    name: ClassVar[str] = "parse"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        context = [name for name in _ROW_COLUMNS if name in table.column_names]
        rows = table.select(context).to_pylist()
        keep_mask: list[bool] = []
        parsed: list[list[Message]] = []
        refused: list[tuple[Mapping[str, Any], RecordError]] = []
        for row in rows:
            try:
                payload = row["payload"]
                if payload is None:
                    raise undecodable_payload(row.get("payload_bytes"))
                parsed.append(parse_payload(payload, _format_of(row["format"])))
                keep_mask.append(True)
            except RecordError as error:
                refused.append((row, error))
                keep_mask.append(False)
        kept = table.filter(pa.array(keep_mask, pa.bool_())) if refused else table
        columns = {
            "record_id": kept["record_id"],
            "messages": pa.array(parsed, MESSAGES_TYPE),
            **{name: kept[name] for name in _PROVENANCE_NAMES},
            "row_index": kept["row_index"]
            if "row_index" in kept.column_names
            else pa.nulls(kept.num_rows, pa.int64()),
        }
        return StepResult(
            kept=pa.table(columns).cast(PARSED_RECORDS), rejected=rejection_rows(refused)
        )
