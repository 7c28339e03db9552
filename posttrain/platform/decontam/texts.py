"""The text decontamination reads from a batch: conversation turns, or one string column.

Turning each conversation into one string in Python (``conversation_text``) would cost
more than hashing it, so the turns are taken apart with Arrow kernels instead: every
message content and every tool call name and argument string of the selected turns
becomes a *segment*, in conversation order. Because separators between segments are not
tokens (:mod:`~posttrain.platform.decontam.ngrams`), the token stream of a conversation's
segments is the token stream of ``conversation_text(messages, view)``, and n-grams may run
across turns exactly as they would in that text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.decontam.ngrams import TokenStream, token_stream
from posttrain.platform.errors import InputFormatError
from posttrain.platform.messages import Role, TextView
from posttrain.platform.schemas import MESSAGES_TYPE

MESSAGES_COLUMN = "messages"

_VIEW_ROLES: dict[TextView, list[str] | None] = {
    TextView.ALL: None,
    TextView.PROMPT: [Role.SYSTEM.value, Role.USER.value, Role.TOOL.value],
    TextView.RESPONSE: [Role.ASSISTANT.value],
}


def _single_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def conversation_segments(
    messages: pa.Array | pa.ChunkedArray, view: TextView
) -> tuple[pa.Array, np.ndarray]:
    """Texts of the turns ``view`` selects, and the conversation each one belongs to.

    Returns:
        ``(segments, conversation)``: a string array ordered by conversation, then turn,
        then content before tool calls; and, aligned with it, the conversation index.
    """
    array = _single_array(messages)
    flat = pc.list_flatten(array)
    owner = pc.list_parent_indices(array).to_numpy().astype(np.int64)
    roles = _VIEW_ROLES[view]
    if roles is not None:
        role = pc.struct_field(flat, "role").cast(pa.string())
        selected = pc.fill_null(pc.is_in(role, pa.array(roles)), False)
        flat, owner = flat.filter(selected), owner[selected.to_numpy(zero_copy_only=False)]
    parts = [pc.struct_field(flat, "content").cast(pa.large_string())]
    call_message = np.empty(0, dtype=np.int64)
    if flat.type.get_field_index("tool_calls") >= 0:
        calls = pc.struct_field(flat, "tool_calls")
        call_message = pc.list_parent_indices(calls).to_numpy().astype(np.int64)
        functions = pc.struct_field(pc.list_flatten(calls), "function")
        parts += [
            pc.struct_field(functions, name).cast(pa.large_string())
            for name in ("name", "arguments")
        ]
    texts = pa.concat_arrays(parts)
    calls_count = len(call_message)
    message_of = np.concatenate([np.arange(len(flat), dtype=np.int64), call_message, call_message])
    # Within a message: content (0), then each call's name (1 + 2k) and arguments (2 + 2k).
    call_rank = np.arange(calls_count, dtype=np.int64)
    part = np.concatenate(
        [np.zeros(len(flat), dtype=np.int64), 1 + 2 * call_rank, 2 + 2 * call_rank]
    )
    order = np.lexsort((part, message_of))
    return texts.take(pa.array(order)), owner[message_of[order]]


def conversation_tokens(messages: pa.Array | pa.ChunkedArray, view: TextView) -> TokenStream:
    """Tokens of each conversation's selected turns, tagged with the conversation index."""
    segments, conversation = conversation_segments(messages, view)
    tokens = token_stream(segments)
    return TokenStream(tokens.hashes, conversation[tokens.doc], tokens.is_word)


def batch_tokens(
    table: pa.Table, *, view: TextView, text_column: str | None, where: str
) -> TokenStream:
    """Tokens of every row of ``table``: its ``messages`` (through ``view``) or ``text_column``.

    Raises:
        InputFormatError: the column is missing or of the wrong type; ``where`` names the
            input in the message.
    """
    segments, owner = batch_segments(table, view=view, text_column=text_column, where=where)
    if owner is None:
        return token_stream(segments)
    tokens = token_stream(segments)
    return TokenStream(tokens.hashes, owner[tokens.doc], tokens.is_word)


def batch_segments(
    table: pa.Table, *, view: TextView, text_column: str | None, where: str
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray | None]:
    """The texts :func:`batch_tokens` reads, and the row each belongs to (``None``: one
    text per row).

    Raises:
        InputFormatError: as :func:`batch_tokens`.
    """
    if text_column is not None:
        if text_column not in table.column_names:
            raise InputFormatError(
                where, f"a text column {text_column!r}", found=f"columns {table.column_names}"
            )
        column = table.column(text_column)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InputFormatError(
                where, f"column {text_column!r} of strings", found=f"type {column.type}"
            )
        return column, None
    if MESSAGES_COLUMN not in table.column_names:
        raise InputFormatError(
            where,
            f"a {MESSAGES_COLUMN!r} column (or name a text column)",
            found=f"columns {table.column_names}",
        )
    column = table.column(MESSAGES_COLUMN)
    if not _is_messages_type(column.type):
        raise InputFormatError(
            where, f"{MESSAGES_COLUMN!r} of type {MESSAGES_TYPE}", found=f"type {column.type}"
        )
    return conversation_segments(column, view)


def _is_string(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _is_messages_type(data_type: pa.DataType) -> bool:
    """A list of structs with string ``role`` and ``content``, however the list and strings
    are spelled (Iceberg reads may give ``large_list``, ``large_string``, ``element``)."""
    if not (pa.types.is_list(data_type) or pa.types.is_large_list(data_type)):
        return False
    message = data_type.value_type
    if not pa.types.is_struct(message):
        return False
    names = {message.field(k).name: message.field(k).type for k in range(message.num_fields)}
    return all(key in names and _is_string(names[key]) for key in ("role", "content"))
