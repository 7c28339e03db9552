"""Conversations that exercise the chat template's edges, and tables built from them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

import pyarrow as pa
import pytest

from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE


def _call(name: str | None, arguments: str | None, call_id: str = "call_1") -> ToolCall:
    return ToolCall(id=call_id, type="function", function={"name": name, "arguments": arguments})  # type: ignore[typeddict-item]


def _varied() -> dict[str, list[Message]]:
    source = inspect.getsource(json.dumps)  # real multi-KB text with code and prose
    return {
        "plain": [make_message("user", "What is 2+2?"), make_message("assistant", "4")],
        "system_multi_turn": [
            make_message("system", "You are terse."),
            make_message("user", "Name a prime."),
            make_message("assistant", "7"),
            make_message("user", "Another?"),
            make_message("assistant", "11, and 13 too."),
        ],
        "tool_round_trip": [
            make_message("user", "Weather in Paris?"),
            make_message(
                "assistant",
                "Let me check.",
                tool_calls=[_call("get_weather", json.dumps({"city": "Paris"}))],
            ),
            make_message("tool", '{"temp_c": 21}', tool_call_id="call_1"),
            make_message("assistant", "It is 21 °C in Paris."),
        ],
        "tool_calls_only": [
            make_message("user", "Add 2 and 3, and multiply 4 by 5."),
            make_message(
                "assistant",
                "",
                tool_calls=[
                    _call("add", '{"a": 2, "b": 3}'),
                    _call("mul", '{"a": 4, "b": 5}', "call_2"),
                ],
            ),
            make_message("tool", "5", tool_call_id="call_1"),
            make_message("tool", "20", tool_call_id="call_2"),
            make_message("assistant", "5 and 20."),
        ],
        "tool_call_missing_fields": [
            make_message("user", "ping"),
            make_message("assistant", "", tool_calls=[_call(None, None), _call("x", "", "c2")]),
        ],
        "unicode": [
            make_message("user", "Übersetze: 你好世界 👋🏽 — naïve café, עברית, e\u0301"),
            make_message("assistant", "🌍 Hello world 👨‍👩‍👧 (你好) — ça va? ∑∫√"),
        ],
        "whitespace_edges": [
            make_message("system", "  leading and trailing  \n"),
            make_message("user", "\n\n\ttabs\t\n"),
            make_message("assistant", "   "),
            make_message("user", ""),
            make_message("assistant", "\nstarts with a newline and ends with spaces   \n\n"),
        ],
        # Under a template whose header runs into the content, "assistant" + "ed" tokenizes
        # as "...an" + "ted": a token straddling the start of the assistant span.
        "straddling_merge": [make_message("user", "x"), make_message("assistant", "ed by me")],
        "empty_assistant": [make_message("user", "Say nothing."), make_message("assistant", "")],
        "template_text": [
            make_message("user", "Render {{ messages }} and {% generation %} literally"),
            make_message("assistant", "Sure: {{ x }} {% endgeneration %} done"),
        ],
        # Refused by gold (a forged turn boundary), so not compared with apply_chat_template.
        "control_text": [
            make_message("user", "Say it literally: <|im_end|>"),
            make_message("assistant", "<tool_call> done"),
        ],
        "assistant_first_and_consecutive": [
            make_message("assistant", "I speak first."),
            make_message("assistant", "And again."),
            make_message("user", "ok"),
        ],
        "unusual_role_and_names": [
            make_message("developer", "Follow the style guide.", name="dev"),
            make_message("user", "hi", name="alice"),
            make_message("assistant", "hello alice"),
        ],
        "long_code": [
            make_message("user", "Explain this function:\n```python\n" + source + "\n```"),
            make_message("assistant", source[: len(source) // 2]),
        ],
    }


@pytest.fixture(scope="session")
def varied_conversations() -> dict[str, list[Message]]:
    """Named conversations covering tool calls, unicode, whitespace and template edges."""
    return _varied()


@pytest.fixture(scope="session")
def make_conversations_table() -> Callable[[list[list[Message]]], pa.Table]:
    """Builds a ``record_id`` + ``messages`` table (ids ``r000``, ``r001``, ...)."""

    def build(conversations: list[list[Message]]) -> pa.Table:
        return pa.table(
            {
                "record_id": [f"r{index:03d}" for index in range(len(conversations))],
                "messages": pa.array(conversations, type=MESSAGES_TYPE),
            }
        )

    return build
