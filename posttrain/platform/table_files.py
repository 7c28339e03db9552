"""Read and write the Parquet / JSONL files the standalone commands (`posttrain dedup`,
`posttrain decontam`) take and write.

Records may carry ``messages`` in any struct layout with ``role`` and ``content`` (a JSONL
file of ``{"role": ..., "content": ...}`` objects is fine); they are conformed to the
canonical :data:`~posttrain.platform.schemas.MESSAGES_TYPE` on reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.errors import InputFormatError
from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_MESSAGES = "messages"
_EXPECTED_MESSAGES = "'messages' as a list of {role, content} objects"


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise InputFormatError(
        path,
        f"a file ending in one of {[*PARQUET_SUFFIXES, *JSONL_SUFFIXES]}",
        found=repr(path.suffix or "no suffix"),
    )


def _message(value: Any) -> Message:
    if not isinstance(value, dict) or not isinstance(value.get("role"), str):
        raise ValueError(f"a message without a string 'role': {str(value)[:80]}")
    content = value.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError(f"a {value['role']!r} message whose content is not a string")
    calls: list[ToolCall] = [
        {
            "id": call.get("id"),
            "type": call.get("type") or "function",
            "function": {
                "name": call["function"]["name"],
                "arguments": call["function"].get("arguments") or "",
            },
        }
        for call in value.get("tool_calls") or []
    ]
    return make_message(
        value["role"],
        content or "",
        name=value.get("name"),
        tool_calls=calls,
        tool_call_id=value.get("tool_call_id"),
    )


def _messages(value: Any) -> list[Message] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"a {type(value).__name__} instead of a list")
    return [_message(message) for message in value]


def _read_jsonl(path: Path) -> pa.Table:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"a JSON {type(row).__name__}, not an object")
                if _MESSAGES in row:
                    row[_MESSAGES] = _messages(row[_MESSAGES])
            except (ValueError, KeyError, TypeError) as exc:
                raise InputFormatError(
                    path,
                    f"one JSON object per line with {_EXPECTED_MESSAGES}",
                    line=number,
                    found=str(exc),
                ) from None
            rows.append(row)
    if not rows:
        raise InputFormatError(path, "at least one JSON record", found="an empty file")
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    arrays = {
        name: pa.array(values, type=MESSAGES_TYPE if name == _MESSAGES else None)
        for name, values in columns.items()
    }
    return pa.table(arrays)


def _conform_messages(table: pa.Table, path: Path) -> pa.Table:
    if _MESSAGES not in table.column_names or table.schema.field(_MESSAGES).type == MESSAGES_TYPE:
        return table
    conformed = []
    for row, value in enumerate(table.column(_MESSAGES).to_pylist(), start=1):
        try:
            conformed.append(_messages(value))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFormatError(path, _EXPECTED_MESSAGES, found=f"row {row}: {exc}") from None
    index = table.column_names.index(_MESSAGES)
    return table.set_column(index, _MESSAGES, pa.array(conformed, type=MESSAGES_TYPE))


def read_table_file(path: str | Path) -> pa.Table:
    """A whole Parquet or JSONL file as an Arrow table, ``messages`` conformed.

    Raises:
        InputFormatError: the file is missing, of another kind, or malformed (the message
            names the line or row).
    """
    source = Path(path)
    kind = _kind(source)
    if not source.is_file():
        raise InputFormatError(source, "an existing file", found="nothing at this path")
    if kind == "jsonl":
        return _read_jsonl(source)
    try:
        table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(source, "a Parquet file", found=str(exc)) from None
    return _conform_messages(table, source)


def write_table_file(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as Parquet (zstd) or JSONL, chosen by the file extension."""
    target = Path(path)
    kind = _kind(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        pq.write_table(table, target, compression="zstd")
        return
    with target.open("w", encoding="utf-8") as out:
        for row in table.to_pylist():
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
