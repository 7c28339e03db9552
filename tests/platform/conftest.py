"""Small real chat files in each format, in a temporary folder (ingest and silver tests)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.platform.ingest.formats import ChatFormat

OPENAI: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temperature": 6}', "tool_call_id": "call_1"},
        {"role": "assistant", "content": "6 °C in Oslo."},
    ]
}
SHAREGPT: dict[str, Any] = {
    "conversations": [
        {"from": "human", "value": "What is 7 × 6?"},
        {"from": "gpt", "value": "7 × 6 = 42."},
    ]
}
ALPACA: dict[str, Any] = {
    "instruction": "Translate to French.",
    "input": "Good morning",
    "output": "Bonjour",
}
PROMPT_COMPLETION: dict[str, Any] = {"prompt": "Reverse 'abc'.", "completion": "'cba'"}
ROLLOUT: dict[str, Any] = {
    "prompt_id": "math-tutor:1",
    "prompt": "What is 2 + 2?",
    "completion": "2 + 2 = 4.\n\n**Answer:** 4",
    "checkpoint": "policy-step-100",
    "reward": 1.0,
    "sampling": {"temperature": 0.8},
}

TRL_PREFERENCE: dict[str, Any] = {
    "prompt": [{"role": "user", "content": "What color is the sky on a clear day?"}],
    "chosen": [{"role": "assistant", "content": "Blue, because air scatters blue light."}],
    "rejected": [{"role": "assistant", "content": "Green."}],
}
TRANSCRIPT_PAIR: dict[str, Any] = {
    "chosen": [
        {"role": "user", "content": "Name a prime number above 10."},
        {"role": "assistant", "content": "11 is prime."},
    ],
    "rejected": [
        {"role": "user", "content": "Name a prime number above 10."},
        {"role": "assistant", "content": "12 is prime."},
    ],
}
RATED_COMPLETIONS: dict[str, Any] = {
    "prompt": "Explain what a hash map is in one sentence.",
    "completions": [
        {"response": "A hash map stores key-value pairs found by hashing keys.", "score": 9},
        {"response": "It is a map of hashes.", "score": 4},
        {"response": "A kind of list.", "score": 2},
    ],
}
JUDGMENT: dict[str, Any] = {
    "chosen_record_id": "a" * 64,
    "rejected_record_id": "b" * 64,
    "judge": "human",
}

WriteJsonl = Callable[[str, Sequence[Any]], Path]


@pytest.fixture
def chat_records() -> dict[ChatFormat, dict[str, Any]]:
    """One valid record per format, chat and preference (fresh copies, safe to modify)."""
    records = {
        ChatFormat.JUDGMENT: JUDGMENT,
        ChatFormat.TRL_PREFERENCE: TRL_PREFERENCE,
        ChatFormat.RATED_COMPLETIONS: RATED_COMPLETIONS,
        ChatFormat.TRANSCRIPT_PAIR: TRANSCRIPT_PAIR,
        ChatFormat.OPENAI: OPENAI,
        ChatFormat.SHAREGPT: SHAREGPT,
        ChatFormat.ALPACA: ALPACA,
        ChatFormat.PROMPT_COMPLETION: PROMPT_COMPLETION,
        ChatFormat.ROLLOUT: ROLLOUT,
    }
    return copy.deepcopy(records)


@pytest.fixture
def write_jsonl(tmp_path: Path) -> WriteJsonl:
    """Write records (dicts are JSON-encoded, strings written as raw lines) to ``name``."""

    def write(name: str, records: Sequence[Any]) -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_parquet(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path

    return write
