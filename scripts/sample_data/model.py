"""Rows, conversations, the chat formats they are written in, and text similarity.

A generator builds each record as a canonical conversation (OpenAI-style message dicts)
and serializes it into its source's format; planted items keep a link to the row they
copy, resolved to a file and line when the files are written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posttrain.platform.messages import Message, TextView, conversation_text, make_message

Msg = dict[str, Any]
Conversation = list[Msg]
SHINGLE_WORDS = 5


def msg(role: str, content: str | None, **extra: Any) -> Msg:
    """A message dict; ``extra`` holds tool_calls / tool_call_id / name when present."""
    return {"role": role, "content": content, **extra}


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call with JSON-text arguments."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


Encoder = Callable[[Conversation], dict[str, Any]]


@dataclass(eq=False)
class Row:
    """One line (JSONL) or row (Parquet) to write, and what it plants, if anything.

    The written value is ``raw`` when set (malformed rows, re-serialized copies), else
    ``encode(conversation)``, so editing the conversation (planting PII) re-serializes.
    """

    conversation: Conversation | None
    encode: Encoder | None = None
    raw: dict[str, Any] | str | None = None
    plant: dict[str, Any] | None = None
    original: Row | None = None  # for duplicates: the row this one copies
    copied: bool = False  # some planted row copies this one
    location: dict[str, Any] = field(default_factory=dict)  # file, line/row, record_id once written

    def value(self) -> dict[str, Any] | str:
        if self.raw is not None:
            return self.raw
        assert self.encode is not None and self.conversation is not None
        return self.encode(self.conversation)


# -- canonical text and similarity -----------------------------------------------------


def as_messages(conversation: Conversation) -> list[Message]:
    return [
        make_message(
            m["role"],
            m.get("content") or "",
            name=m.get("name"),
            tool_calls=m.get("tool_calls"),
            tool_call_id=m.get("tool_call_id"),
        )
        for m in conversation
    ]


def text_of(conversation: Conversation, view: TextView = TextView.ALL) -> str:
    """The conversation's text as silver's text stages see it."""
    return conversation_text(as_messages(conversation), view)


def normalized(conversation: Conversation) -> str:
    """Lower-cased, whitespace-collapsed text: equal for exact and case/space variants."""
    return " ".join(text_of(conversation).lower().split())


def shingles(conversation: Conversation) -> set[str]:
    """Word 5-grams of the normalized text of all turns (the whole text when it is shorter)."""
    return shingles_of(normalized(conversation))


def shingles_of(text: str) -> set[str]:
    words = text.split()
    if len(words) <= SHINGLE_WORDS:
        return {" ".join(words)}
    return {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: Conversation, b: Conversation) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


# -- serialization into the four chat formats ---------------------------------------------


def _openai_message(m: Msg) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content")}
    for key in ("name", "tool_calls", "tool_call_id"):
        if m.get(key):
            out[key] = m[key]
    return out


def to_openai(conversation: Conversation, **extra: Any) -> dict[str, Any]:
    return {"messages": [_openai_message(m) for m in conversation], **extra}


_SHAREGPT_FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def to_sharegpt(
    conversation: Conversation, *, system_key: bool = False, **extra: Any
) -> dict[str, Any]:
    """ShareGPT turns; a leading system message becomes a ``system`` key if asked."""
    record: dict[str, Any] = dict(extra)
    turns = conversation
    if system_key and turns and turns[0]["role"] == "system":
        record["system"] = turns[0]["content"]
        turns = turns[1:]
    record["conversations"] = [
        {"from": _SHAREGPT_FROM.get(m["role"], m["role"]), "value": m["content"]} for m in turns
    ]
    return record


def to_alpaca(conversation: Conversation, *, input_text: str = "") -> dict[str, Any]:
    """Alpaca from ``[user, assistant]``; ``input_text`` ends the user turn after a blank line."""
    user, assistant = conversation[-2]["content"], conversation[-1]["content"]
    instruction = user[: -len(input_text) - 2] if input_text else user
    return {"instruction": instruction, "input": input_text, "output": assistant}


def to_prompt_completion(conversation: Conversation) -> dict[str, Any]:
    return {"prompt": conversation[0]["content"], "completion": conversation[1]["content"]}
