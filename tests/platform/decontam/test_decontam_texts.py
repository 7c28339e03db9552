"""Conversation text read with Arrow kernels equals ``conversation_text``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.decontam.ngrams import token_stream
from posttrain.platform.decontam.texts import batch_tokens, conversation_tokens
from posttrain.platform.errors import InputFormatError
from posttrain.platform.messages import (
    Message,
    TextView,
    ToolCall,
    conversation_text,
    make_message,
)
from posttrain.platform.schemas import MESSAGES_TYPE

CALL: ToolCall = {
    "id": "c1",
    "type": "function",
    "function": {"name": "search_docs", "arguments": '{"query": "sortedList"}'},
}
CONVERSATIONS: list[list[Message] | None] = [
    [
        make_message("system", "Be brief."),
        make_message("user", "Sort [3, 1]?"),
        make_message("assistant", "Calling a tool.", tool_calls=[CALL, CALL]),
        make_message("tool", "sorted(x) returns a new list", tool_call_id="c1"),
        make_message("assistant", "Use sorted([3, 1])."),
    ],
    None,
    [],
    [make_message("user", "Ünïcödé ＦＵＬＬ width"), make_message("assistant", "")],
]


@pytest.mark.parametrize("view", list(TextView))
def test_conversation_tokens_equal_tokens_of_conversation_text(view: TextView) -> None:
    messages = pa.array(CONVERSATIONS, type=MESSAGES_TYPE)
    fast = conversation_tokens(messages, view)
    slow = token_stream([conversation_text(c or [], view) for c in CONVERSATIONS])
    assert np.array_equal(fast.hashes, slow.hashes)
    assert np.array_equal(fast.doc, slow.doc)


def test_batch_tokens_read_a_named_text_column() -> None:
    table = pa.table({"text": ["a b", None, "c"]})
    tokens = batch_tokens(table, view=TextView.ALL, text_column="text", where="t.parquet")
    assert tokens.doc.tolist() == [0, 0, 2]


def test_batch_tokens_name_the_missing_column() -> None:
    table = pa.table({"prompt": ["a"]})
    with pytest.raises(InputFormatError, match=r"t\.parquet: expected a 'messages' column"):
        batch_tokens(table, view=TextView.ALL, text_column=None, where="t.parquet")


def test_batch_tokens_refuse_a_non_string_text_column() -> None:
    table = pa.table({"text": [1, 2]})
    with pytest.raises(InputFormatError, match="column 'text' of strings, found type int64"):
        batch_tokens(table, view=TextView.ALL, text_column="text", where="t.parquet")
