"""Render conversations to chat-template text plus the character spans of assistant output.

This is the first half of ``tokenizer.apply_chat_template(..., return_assistant_tokens_mask=True)``:
the template turns messages into one string, and every ``{% generation %}`` block becomes a
``(start, end)`` character span that the tokenizer later maps to trainable tokens.

Two renderers give the same output:

- :class:`JinjaChatRenderer` runs any template through ``transformers``' own
  ``render_jinja_template``, the function ``apply_chat_template`` calls, so it is exact by
  construction.
- :class:`ChatMLRenderer` is the shipped ``posttrain-chat-8k`` template written as Python
  string building over the Arrow columns, about five times faster than Jinja.
  :func:`make_renderer` picks it only when the tokenizer's template is that template
  character for character; the tests (and ``bench/tokenization.py``, on its whole corpus) check
  it agrees with Jinja. A conversation outside the shapes it mirrors goes to Jinja, so it
  never guesses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.errors import PosttrainError

Conversation = list[dict[str, Any]]
Span = tuple[int, int]
Rendered = tuple[str, list[Span]]

SHIPPED_TOKENIZERS_DIR = Path(__file__).resolve().parent / "tokenizer"
CHATML_TEMPLATE_PATH = SHIPPED_TOKENIZERS_DIR / "posttrain-chat-8k" / "chat_template.jinja"


class RenderError(PosttrainError):
    """The chat template refused one conversation; the message is the template's own words."""


def conversations_from_arrow(messages: pa.Array | pa.ChunkedArray) -> list[Conversation | None]:
    """Python conversations from a ``MESSAGES_TYPE`` column, normalized like ``transformers``.

    ``apply_chat_template`` drops message keys whose value is ``None`` before rendering
    (``name``, ``tool_call_id`` and a null ``content`` are absent rather than ``None`` in the
    template); this does the same, so both paths see identical dicts. A null list stays
    ``None`` for the caller to reject.
    """
    conversations: list[Conversation | None] = []
    for conversation in messages.to_pylist():
        if conversation is None:
            conversations.append(None)
            continue
        conversations.append(
            [
                {key: value for key, value in message.items() if value is not None}
                if isinstance(message, dict)
                else message
                for message in conversation
            ]
        )
    return conversations


class ChatRenderer(ABC):
    """Turns conversations into template text and assistant character spans."""

    @abstractmethod
    def render(self, conversation: Conversation) -> Rendered:
        """One conversation; raises :class:`RenderError` if the template refuses it."""

    def render_column(self, messages: pa.Array | pa.ChunkedArray) -> list[Rendered | RenderError]:
        """Every conversation of a ``MESSAGES_TYPE`` column, as :meth:`render_many` would."""
        return self.render_many(conversations_from_arrow(messages))

    def render_many(
        self, conversations: Sequence[Conversation | None]
    ) -> list[Rendered | RenderError]:
        """Every conversation, with a :class:`RenderError` in place of each refused one."""
        results: list[Rendered | RenderError] = []
        for conversation in conversations:
            if not isinstance(conversation, list):
                results.append(RenderError(f"expected a list of messages, found {conversation!r}"))
                continue
            try:
                results.append(self.render(conversation))
            except RenderError as error:
                results.append(error)
        return results


class JinjaChatRenderer(ChatRenderer):
    """Any chat template, rendered exactly as ``apply_chat_template`` renders it."""

    def __init__(self, chat_template: str, template_kwargs: Mapping[str, Any]) -> None:
        self.chat_template = chat_template
        self.template_kwargs = dict(template_kwargs)

    def render(self, conversation: Conversation) -> Rendered:
        from jinja2 import TemplateError
        from transformers.utils.chat_template_utils import render_jinja_template

        try:
            # Annotated as returning str; it returns (texts, generation spans per text).
            result: Any = render_jinja_template(
                conversations=[conversation],
                chat_template=self.chat_template,
                return_assistant_tokens_mask=True,
                **self.template_kwargs,
            )
        except (TemplateError, TypeError, ValueError) as error:
            raise RenderError(str(error)) from error
        texts, spans = result
        return texts[0], [(int(start), int(end)) for start, end in spans[0]]


class _OutsideFastPath(Exception):
    """The conversation has a shape :class:`ChatMLRenderer` does not mirror; use Jinja."""


# One message as the ChatML template reads it: role, content ('' if absent) and, for
# assistant turns, (name, arguments) of each tool call.
_Turn = tuple[str, str, list[tuple[str, str]]]


class ChatMLRenderer(ChatRenderer):
    """The ``posttrain-chat-8k`` template as string building, for speed.

    Mirrors ``chat_template.jinja`` line by line; anything it does not mirror (a missing
    role, non-string content, tool calls that are not ``{function: {name, arguments}}``)
    falls back to ``fallback``. :meth:`render_column` reads the Arrow columns directly,
    without building a dict per message.
    """

    def __init__(self, fallback: JinjaChatRenderer) -> None:
        self.fallback = fallback

    def render(self, conversation: Conversation) -> Rendered:
        try:
            return _render_turns(_turns_from_dicts(conversation))
        except _OutsideFastPath:
            return self.fallback.render(conversation)

    def render_column(self, messages: pa.Array | pa.ChunkedArray) -> list[Rendered | RenderError]:
        columns = _MessageColumns(messages)
        results: list[Rendered | RenderError] = []
        for index in range(columns.num_conversations):
            try:
                results.append(_render_turns(columns.turns(index)))
            except _OutsideFastPath:
                results += self.render_many(conversations_from_arrow(columns.row(index)))
        return results


def _text(value: Any) -> str:
    """Jinja's ``value or ''`` for the string-or-absent fields the fast path accepts."""
    if value is None or value == "":
        return ""
    if type(value) is not str:
        raise _OutsideFastPath
    return value


def _tool_call(call: Any) -> tuple[str, str]:
    function = call.get("function") if type(call) is dict else None
    if type(function) is not dict:
        raise _OutsideFastPath
    return _text(function.get("name")), _text(function.get("arguments"))


def _turns_from_dicts(conversation: Conversation) -> list[_Turn]:
    turns: list[_Turn] = []
    for message in conversation:
        if type(message) is not dict or type(message.get("role")) is not str:
            raise _OutsideFastPath
        calls: list[tuple[str, str]] = []
        if message["role"] == "assistant":  # the template reads tool calls of these only
            raw_calls = message.get("tool_calls") or []
            if type(raw_calls) is not list:
                raise _OutsideFastPath
            calls = [_tool_call(call) for call in raw_calls]
        turns.append((message["role"], _text(message.get("content")), calls))
    return turns


def _render_turns(turns: list[_Turn]) -> Rendered:
    parts: list[str] = []
    spans: list[Span] = []
    position = 0
    for role, content, calls in turns:
        if role == "assistant":
            body = [content]
            for index, (name, arguments) in enumerate(calls):
                if content or index:
                    body.append("\n")
                body.append('<tool_call>\n{"name": "' + name + '", "arguments": ')
                body.append((arguments or "{}") + "}\n</tool_call>")
            body.append("<|im_end|>")
            generated = "".join(body)
            head = "<|im_start|>assistant\n"
            start = position + len(head)
            spans.append((start, start + len(generated)))
            turn = head + generated + "\n"
        elif role == "tool":
            turn = "<|im_start|>tool\n<tool_response>\n" + content
            turn += "\n</tool_response><|im_end|>\n"
        else:
            turn = "<|im_start|>" + role + "\n" + content + "<|im_end|>\n"
        parts.append(turn)
        position += len(turn)
    return "".join(parts), spans


def _bounds(lists: pa.Array) -> list[int]:
    """Start of each list in ``lists.flatten()``, plus the end (null lists are empty)."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    return [0, *np.cumsum(lengths).tolist()]


def _fields(structs: pa.StructArray) -> dict[str, pa.Array]:
    # flatten(), unlike field(), applies the struct's own offset and nulls.
    return dict(zip(structs.type.names, structs.flatten(), strict=True))


class _MessageColumns:
    """A ``MESSAGES_TYPE`` column as flat Python lists: what ChatML rendering reads."""

    def __init__(self, messages: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        self._array = messages
        self.num_conversations = len(self._array)
        self._null_conversation = self._array.is_null().to_pylist()
        self._message_bounds = _bounds(self._array)
        structs = self._array.flatten()
        message = _fields(structs)
        self._roles = message["role"].to_pylist()
        self._contents = message["content"].to_pylist()
        calls = message["tool_calls"]
        self._call_bounds = _bounds(calls)
        call_structs = calls.flatten()
        function = _fields(call_structs)["function"]
        self._names = _fields(function)["name"].to_pylist()
        self._arguments = _fields(function)["arguments"].to_pylist()
        # Null messages, tool calls or functions are shapes Jinja handles its own way.
        odd_call = pc.or_(call_structs.is_null(), function.is_null()).to_numpy(zero_copy_only=False)
        odd_calls_before = [0, *np.cumsum(odd_call).tolist()]
        self._odd_message = [
            is_null or odd_calls_before[end] > odd_calls_before[start]
            for is_null, start, end in zip(
                structs.is_null().to_pylist(),
                self._call_bounds,
                self._call_bounds[1:],
                strict=False,
            )
        ]

    def row(self, index: int) -> pa.Array:
        return self._array.slice(index, 1)

    def turns(self, index: int) -> list[_Turn]:
        if self._null_conversation[index]:
            raise _OutsideFastPath
        turns: list[_Turn] = []
        for message in range(self._message_bounds[index], self._message_bounds[index + 1]):
            role = self._roles[message]
            if role is None or self._odd_message[message]:
                raise _OutsideFastPath
            calls: list[tuple[str, str]] = []
            if role == "assistant":
                calls = [
                    (self._names[call] or "", self._arguments[call] or "")
                    for call in range(self._call_bounds[message], self._call_bounds[message + 1])
                ]
            turns.append((role, self._contents[message] or "", calls))
        return turns


def make_renderer(chat_template: str, template_kwargs: Mapping[str, Any]) -> ChatRenderer:
    """The fast renderer if ``chat_template`` is the shipped ChatML template, else Jinja."""
    jinja = JinjaChatRenderer(chat_template, template_kwargs)
    if chat_template == CHATML_TEMPLATE_PATH.read_text():
        return ChatMLRenderer(jinja)
    return jinja
