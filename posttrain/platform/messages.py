"""The canonical conversation: a list of messages in the OpenAI / TRL conversational shape.

Every chat format is parsed into this shape in silver, and gold hands it to TRL unchanged.
Messages travel between layers as Arrow ``list<struct>`` values (see
:data:`posttrain.platform.schemas.MESSAGE_TYPE`); in Python they are :class:`Message`
dicts, which is also what ``datasets`` and chat templates expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TypedDict


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FunctionCall(TypedDict):
    name: str
    arguments: str  # JSON text, as in the OpenAI API


class ToolCall(TypedDict):
    id: str | None
    type: str
    function: FunctionCall


class Message(TypedDict):
    role: str
    content: str
    name: str | None
    tool_calls: list[ToolCall]  # empty when there are none (Iceberg stores a null list as [])
    tool_call_id: str | None


def make_message(
    role: str | Role,
    content: str,
    *,
    name: str | None = None,
    tool_calls: list[ToolCall] | None = None,
    tool_call_id: str | None = None,
) -> Message:
    """Build a :class:`Message` with every field present (Arrow needs a fixed struct).

    Example:
        >>> make_message("user", "hi")["tool_calls"]
        []
    """
    return Message(
        role=str(role),
        content=content,
        name=name,
        tool_calls=tool_calls or [],
        tool_call_id=tool_call_id,
    )


class TextView(StrEnum):
    """Which part of a conversation a text-level stage (dedup, decontamination) looks at."""

    ALL = "all"
    PROMPT = "prompt"  # system, user and tool turns: what the model is given
    RESPONSE = "response"  # assistant turns: what the model learns to produce


_PROMPT_ROLES = frozenset({Role.SYSTEM, Role.USER, Role.TOOL})


def _message_text(message: Message) -> str:
    parts = [message["content"] or ""]
    for call in message.get("tool_calls") or []:
        parts.append(f"{call['function']['name']}({call['function']['arguments']})")
    return "\n".join(part for part in parts if part)


def conversation_text(messages: Sequence[Message], view: TextView = TextView.ALL) -> str:
    """The text of the turns selected by ``view``, one turn per paragraph.

    Tool calls count as assistant text (name and arguments), so two agent traces that
    differ only in the tool they call are not duplicates.

    Example:
        >>> msgs = [make_message("user", "2+2?"), make_message("assistant", "4")]
        >>> conversation_text(msgs, TextView.RESPONSE)
        '4'
    """
    if view is TextView.ALL:
        selected = list(messages)
    elif view is TextView.PROMPT:
        selected = [m for m in messages if m["role"] in _PROMPT_ROLES]
    else:
        selected = [m for m in messages if m["role"] == Role.ASSISTANT]
    return "\n\n".join(text for text in map(_message_text, selected) if text)
