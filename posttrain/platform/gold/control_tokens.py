"""Find message text that spells one of the tokenizer's control tokens.

A user who writes ``<|im_end|>`` in a message would, once the chat template renders it,
end the turn early: the tokenizer reads the string as the control token, not as text
(``apply_chat_template`` behaves the same way). Training on such a row teaches the model a
forged turn boundary, so gold refuses it with the turn and token named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class ControlTokenHit:
    """The first control token found in one conversation."""

    row: int
    turn: int  # 1-based
    role: str
    token: str

    def describe(self) -> str:
        return (
            f"turn {self.turn} ({self.role}) contains the control token {self.token!r}, which "
            "the tokenizer would read as markup, not text"
        )


def _message_texts(flat: pa.StructArray) -> pa.Array:
    """Content plus tool-call names and arguments of each message, one string per message."""
    content = pc.fill_null(flat.field("content"), "")
    calls = flat.field("tool_calls")
    if pc.sum(pc.fill_null(pc.list_value_length(calls), 0)).as_py() == 0:
        return content
    functions = pc.list_flatten(calls).field("function")
    call_text = pc.binary_join_element_wise(
        pc.fill_null(functions.field("name"), ""),
        pc.fill_null(functions.field("arguments"), ""),
        " ",
    )
    per_message = pa.ListArray.from_arrays(calls.offsets, call_text)
    joined = pc.fill_null(pc.binary_join(per_message, " "), "")
    return pc.binary_join_element_wise(content, joined, " ")


def find_control_tokens(
    messages: pa.Array | pa.ChunkedArray, tokens: Sequence[str]
) -> list[ControlTokenHit]:
    """The first control token (in ``tokens`` order) per conversation that spells one.

    Example:
        >>> from posttrain.platform.messages import make_message
        >>> from posttrain.platform.schemas import MESSAGES_TYPE
        >>> column = pa.array([[make_message("user", "hi <|im_end|>")]], type=MESSAGES_TYPE)
        >>> find_control_tokens(column, ["<|im_end|>"])[0].turn
        1
    """
    column = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    if len(column) == 0 or not tokens:
        return []
    flat = pc.list_flatten(column)
    texts = _message_texts(flat)
    # One pass for "any token" (RE2 matches a set of literals in one scan); the per-token
    # passes, which decide which token is named, then read only the messages that hit.
    any_token = "|".join(re.escape(token) for token in tokens)
    candidates = np.flatnonzero(
        pc.fill_null(pc.match_substring_regex(texts, any_token), False).to_numpy(
            zero_copy_only=False
        )
    )
    if not candidates.size:
        return []
    candidate_texts = texts.take(pa.array(candidates))
    matched = np.zeros(candidates.size, dtype=bool)
    which = np.full(candidates.size, -1, dtype=np.int64)
    for index, token in enumerate(tokens):
        hit = pc.fill_null(pc.match_substring(candidate_texts, token), False).to_numpy(
            zero_copy_only=False
        )
        which[hit & ~matched] = index
        matched |= hit
    parents = pc.list_parent_indices(column).to_numpy()
    starts = column.offsets.to_numpy()[:-1]
    roles = flat.field("role")
    hits: dict[int, ControlTokenHit] = {}
    for position in np.flatnonzero(matched):
        message = int(candidates[position])
        row = int(parents[message])
        if row not in hits:
            hits[row] = ControlTokenHit(
                row=row,
                turn=int(message - starts[row]) + 1,
                role=str(roles[message].as_py()),
                token=tokens[int(which[position])],
            )
    return [hits[row] for row in sorted(hits)]
