"""Broken rows inside otherwise good files.

Each defect names the silver rejection reason it should get: ``malformed`` when the row
cannot be read as a conversation (bad JSON, not an object, missing keys, wrong types),
``invalid_roles`` for role-order and tool-role mistakes, ``empty`` for empty turns. Every
broken row is made from a spare record that appears nowhere else, so it is no duplicate.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from sample_data.build import Source
from sample_data.model import Conversation, Row, msg
from sample_data.planting import insert_row

# A defect: (name, expected silver reason, what is wrong, how to break a base row).
Breaker = Callable[[Row, Source], Row]
Defect = tuple[str, str, str, Breaker]


def _line(row: Row) -> str:
    return json.dumps(row.value(), ensure_ascii=False)


def _with_value(change: Callable[[dict[str, Any]], Any]) -> Breaker:
    def breaker(row: Row, source: Source) -> Row:
        value = copy.deepcopy(row.value())
        assert isinstance(value, dict)
        return Row(None, raw=change(value))

    return breaker


def _with_conversation(change: Callable[[Conversation], Conversation]) -> Breaker:
    def breaker(row: Row, source: Source) -> Row:
        changed = change(copy.deepcopy(row.conversation or []))
        return Row(changed, source.make_encoder())

    return breaker


def _text(row: Row, source: Source, transform: Callable[[str], str]) -> Row:
    return Row(None, raw=transform(_line(row)))


TRUNCATED: Defect = (
    "undecodable_json",
    "malformed",
    "the line is cut off mid-record",
    lambda row, source: _text(row, source, lambda line: line[: len(line) * 3 // 5]),
)
TRAILING_COMMA: Defect = (
    "undecodable_json",
    "malformed",
    "a trailing comma before the closing brace",
    lambda row, source: _text(row, source, lambda line: line[:-1] + ",}"),
)
PYTHON_REPR: Defect = (
    "undecodable_json",
    "malformed",
    "a Python dict repr (single quotes) instead of JSON",
    lambda row, source: Row(None, raw=repr(row.value())),
)
ARRAY: Defect = (
    "not_an_object",
    "malformed",
    "a JSON array instead of an object",
    lambda row, source: Row(None, raw=json.dumps(list(_as_dict(row).values()), ensure_ascii=False)),
)
STRING: Defect = (
    "not_an_object",
    "malformed",
    "a bare JSON string instead of an object",
    lambda row, source: Row(
        None, raw=json.dumps((row.conversation or [{}])[-1].get("content"), ensure_ascii=False)
    ),
)


def _as_dict(row: Row) -> dict[str, Any]:
    value = row.value()
    assert isinstance(value, dict)
    return value


def _drop(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda value: {k: v for k, v in value.items() if k != key}


def _rename(old: str, new: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda value: {(new if k == old else k): v for k, v in value.items()}


def _set(key: str, make: Callable[[Any], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda value: {**value, key: make(value[key])}


def _reply_first(conversation: Conversation) -> Conversation:
    """Drop the first user turn, so the assistant's reply opens the conversation."""
    system = [m for m in conversation if m["role"] == "system"][:1]
    rest = [m for m in conversation if m["role"] != "system"]
    return system + rest[1:]


def _drop_last(conversation: Conversation) -> Conversation:
    return conversation[:-1]


def _rename_role(old: str, new: str) -> Callable[[Conversation], Conversation]:
    def change(conversation: Conversation) -> Conversation:
        for turn in conversation:
            if turn["role"] == old:
                turn["role"] = new
                break
        return conversation

    return change


def _empty_last_answer(conversation: Conversation) -> Conversation:
    [m for m in conversation if m["role"] == "assistant"][-1]["content"] = ""
    return conversation


def _orphan_tool(conversation: Conversation) -> Conversation:
    """Remove the assistant turn that made a tool call, leaving its result unexplained."""
    caller = next(i for i, m in enumerate(conversation) if m.get("tool_calls"))
    return conversation[:caller] + conversation[caller + 1 :]


def _wrong_call_id(conversation: Conversation) -> Conversation:
    tool = next(m for m in conversation if m["role"] == "tool")
    tool["tool_call_id"] = "call_doesnotexist"
    return conversation


def _tool_first(conversation: Conversation) -> Conversation:
    at = 1 if conversation[0]["role"] == "system" else 0
    orphan = msg("tool", '{"status": "ok"}', tool_call_id="call_unknown")
    return [*conversation[:at], orphan, *conversation[at:]]


MISSING = "missing_key"
WRONG_TYPE = "wrong_type"
DEFECTS: dict[str, list[Defect]] = {
    "alpaca": [
        TRUNCATED,
        PYTHON_REPR,
        ARRAY,
        (MISSING, "malformed", "no 'output' key", _with_value(_drop("output"))),
        (
            WRONG_TYPE,
            "malformed",
            "'instruction' is a list",
            _with_value(_set("instruction", lambda v: [v])),
        ),
        ("empty_content", "empty", "'output' is empty", _with_value(_set("output", lambda v: ""))),
    ],
    "prompt_completion": [
        TRAILING_COMMA,
        STRING,
        (MISSING, "malformed", "no 'completion' key", _with_value(_drop("completion"))),
        (
            WRONG_TYPE,
            "malformed",
            "'completion' is an object",
            _with_value(_set("completion", lambda v: {"text": v})),
        ),
        (
            "empty_content",
            "empty",
            "'completion' is only whitespace",
            _with_value(_set("completion", lambda v: "   ")),
        ),
    ],
    "sharegpt": [
        TRUNCATED,
        STRING,
        (
            MISSING,
            "malformed",
            "'conversation' instead of 'conversations'",
            _with_value(_rename("conversations", "conversation")),
        ),
        (
            WRONG_TYPE,
            "malformed",
            "a turn's 'value' is a list",
            _with_value(
                _set(
                    "conversations",
                    lambda turns: [{**turns[0], "value": [turns[0]["value"]]}, *turns[1:]],
                )
            ),
        ),
        (
            "wrong_role_order",
            "invalid_roles",
            "the assistant speaks first",
            _with_conversation(_reply_first),
        ),
        (
            "wrong_role_order",
            "invalid_roles",
            "ends with an unanswered user turn",
            _with_conversation(_drop_last),
        ),
        (
            "unknown_role",
            "invalid_roles",
            "a turn from 'narrator'",
            _with_conversation(_rename_role("assistant", "narrator")),
        ),
        (
            "empty_content",
            "empty",
            "the last answer is empty",
            _with_conversation(_empty_last_answer),
        ),
    ],
    "openai-jsonl": [
        TRUNCATED,
        TRAILING_COMMA,
        (
            "not_an_object",
            "malformed",
            "a bare array of messages",
            lambda row, source: Row(
                None, raw=json.dumps(_as_dict(row)["messages"], ensure_ascii=False)
            ),
        ),
        (
            MISSING,
            "malformed",
            "'message' instead of 'messages'",
            _with_value(_rename("messages", "message")),
        ),
        (
            WRONG_TYPE,
            "malformed",
            "a message's 'content' is an object",
            _with_value(
                _set(
                    "messages",
                    lambda ms: [{**ms[0], "content": {"text": ms[0]["content"]}}, *ms[1:]],
                )
            ),
        ),
        (
            "wrong_role_order",
            "invalid_roles",
            "the assistant speaks first",
            _with_conversation(_reply_first),
        ),
        (
            "tool_misuse",
            "invalid_roles",
            "a tool result nobody asked for",
            _with_conversation(_tool_first),
        ),
        (
            "empty_content",
            "empty",
            "the last answer is empty",
            _with_conversation(_empty_last_answer),
        ),
    ],
    "openai-parquet": [
        (MISSING, "malformed", "'messages' is null", _with_value(_set("messages", lambda v: None))),
        (
            "empty_conversation",
            "empty",
            "'messages' is an empty list",
            _with_value(_set("messages", lambda v: [])),
        ),
        (
            "wrong_role_order",
            "invalid_roles",
            "the assistant speaks first",
            _with_conversation(_reply_first),
        ),
        (
            "tool_misuse",
            "invalid_roles",
            "a tool result without the call that asked for it",
            _with_conversation(_orphan_tool),
        ),
        (
            "tool_misuse",
            "invalid_roles",
            "a tool result answering an unknown call id",
            _with_conversation(_wrong_call_id),
        ),
        (
            "unknown_role",
            "invalid_roles",
            "a message with role 'robot'",
            _with_conversation(_rename_role("assistant", "robot")),
        ),
        (
            "empty_content",
            "empty",
            "the last answer is empty",
            _with_conversation(_empty_last_answer),
        ),
    ],
}


def plant_malformed(source: Source, rng: random.Random) -> None:
    key = (
        source.format
        if source.format != "openai"
        else ("openai-parquet" if source.is_parquet else "openai-jsonl")
    )
    for defect, reason, detail, breaker in DEFECTS[key]:
        needs_tools = defect == "tool_misuse" and source.is_parquet
        base = next(
            r
            for r in source.spares
            if not needs_tools or any(m.get("tool_calls") for m in r.conversation or [])
        )
        source.spares.remove(base)  # each broken row comes from its own unused record
        row = breaker(base, source)
        row.plant = {
            "kind": "malformed",
            "defect": defect,
            "expected_reason": reason,
            "detail": detail,
        }
        insert_row(source, row, rng)


# -- length outliers ---------------------------------------------------------------------------
