"""gold.sft rows made of varied conversations, shared by the export and loader tests."""

from __future__ import annotations

import json

import pyarrow as pa

from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import GOLD_SFT


def _call(name: str, arguments: str, call_id: str) -> ToolCall:
    return ToolCall(id=call_id, type="function", function={"name": name, "arguments": arguments})


def conversations() -> list[list[Message]]:
    """Plain, multi-turn, tool-calling, unicode and whitespace-edged conversations."""
    return [
        [make_message("user", "What is 2+2?"), make_message("assistant", "4")],
        [
            make_message("system", "You are terse."),
            make_message("user", "Name a prime."),
            make_message("assistant", "7"),
            make_message("user", "Another?"),
            make_message("assistant", "11, and 13 too."),
        ],
        [
            make_message("user", "Weather in Paris?"),
            make_message(
                "assistant",
                "Let me check.",
                tool_calls=[_call("get_weather", json.dumps({"city": "Paris"}), "call_1")],
            ),
            make_message("tool", '{"temp_c": 21}', tool_call_id="call_1"),
            make_message("assistant", "It is 21 °C in Paris."),
        ],
        [
            make_message("user", "Übersetze: 你好世界 👋🏽 — naïve café", name="alice"),
            make_message("assistant", '🌍 Hello world (你好) — ça va? "quoted" \\ backslash'),
        ],
        [
            make_message("user", "\n\n\ttabs\t\n"),
            make_message("assistant", "\nstarts with a newline and ends with spaces   \n\n"),
        ],
    ]


def sft_rows(start: int, count: int) -> pa.Table:
    """``count`` gold.sft rows with ids ``r{start:03d}``..., cycling the conversations."""
    convs = conversations()
    return pa.Table.from_pylist(
        [
            {
                "record_id": f"r{index:03d}",
                "messages": convs[index % len(convs)],
                "source": "tests",
                "workspace": None,
                "license": "CC0-1.0" if index % 2 else None,
            }
            for index in range(start, start + count)
        ],
        schema=GOLD_SFT,
    )
