"""Read and write the Parquet / JSONL files the standalone commands (`posttrain dedup`,
`posttrain decontam`) take and write.

Records may carry ``messages`` in any struct layout with ``role`` and ``content`` (a JSONL
file of ``{"role": ..., "content": ...}`` objects is fine); they are conformed to the
canonical :data:`~posttrain.platform.schemas.MESSAGES_TYPE` on reading. JSONL may also be
``.gz``/``.zst`` compressed or a ``.json`` array, read as ingest reads them.

:func:`read_records` skips the lines it cannot use (not UTF-8, not JSON, not an object,
``messages`` of the wrong shape) and reports each with its line number, so one bad line does
not refuse a whole file; :func:`read_table_file` is the strict form (the first bad line
raises). A JSONL file in a chat format other than ``messages`` (ShareGPT, Alpaca,
prompt/completion) also gets each record's canonical ``messages`` beside the table, so it
can be compared without conversion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.errors import InputFormatError, RecordError
from posttrain.platform.ingest.formats import ChatFormat, majority_format
from posttrain.platform.ingest.readers import FileKind, file_type, iter_raw_batches
from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_MESSAGES = "messages"
_EXPECTED_MESSAGES = "'messages' as a list of {role, content} objects"
SHOWN_BAD_LINES = 5


@dataclass(frozen=True)
class BadLine:
    """A line (JSONL) or row (Parquet) that was skipped, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class MixedColumn:
    """A JSONL column whose values have several JSON types (kept as JSON text)."""

    name: str
    types: dict[str, int]  # JSON type name → first line holding it

    def describe(self) -> str:
        return ", ".join(f"{kind} (line {line})" for kind, line in self.types.items())


@dataclass(frozen=True)
class RecordsFile:
    """The usable records of an input file, and what was skipped.

    ``numbers`` holds each row's line (JSONL) or row (Parquet) number in the file;
    ``messages`` is set when the file is in a chat format other than ``messages``.
    """

    path: Path
    table: pa.Table
    numbers: pa.Array
    bad_lines: list[BadLine] = field(default_factory=list)
    mixed: dict[str, MixedColumn] = field(default_factory=dict)
    chat_format: ChatFormat | None = None
    messages: pa.Array | None = None

    def skipped_summary(self, shown: int = SHOWN_BAD_LINES) -> str | None:
        """``"skipped 3 bad lines of f.jsonl: line 2: ...; ..."``, or ``None`` if none."""
        if not self.bad_lines:
            return None
        unit = "line" if _is_text(self.path) else "row"
        first = "; ".join(f"{unit} {bad.line}: {bad.reason}" for bad in self.bad_lines[:shown])
        more = len(self.bad_lines) - shown
        return f"skipped {len(self.bad_lines):,} bad {unit}(s) of {self.path}: {first}" + (
            f"; and {more:,} more" if more > 0 else ""
        )


def _is_text(path: Path) -> bool:
    return _kind(path) == "jsonl"


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    try:
        if file_type(path).kind in (FileKind.JSONL, FileKind.JSON):
            return "jsonl"
    except InputFormatError:
        pass
    raise InputFormatError(
        path,
        f"a file ending in one of {[*PARQUET_SUFFIXES, *JSONL_SUFFIXES]} (JSONL also .json, "
        ".gz, .zst)",
        found=repr("".join(path.suffixes[-2:]) or "no suffix"),
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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _column(
    name: str, values: list[Any], numbers: list[int]
) -> tuple[pa.Array, MixedColumn | None]:
    """One JSONL column as Arrow; values of several JSON types become JSON text."""
    try:
        return pa.array(values, type=MESSAGES_TYPE if name == _MESSAGES else None), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    types: dict[str, int] = {}
    for value, number in zip(values, numbers, strict=True):
        types.setdefault(_json_type(value), number)
    types.pop("null", None)
    text = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    return pa.array(text, pa.string()), MixedColumn(name, types)


def _jsonl_payloads(path: Path) -> Iterator[tuple[int, str | None, bytes | None]]:
    for batch in iter_raw_batches(path):
        yield from zip(
            batch["row_index"].to_pylist(),
            batch["payload"].to_pylist(),
            batch["payload_bytes"].to_pylist(),
            strict=True,
        )


def _decode(text: str | None, raw: bytes | None) -> dict[str, Any]:
    if text is None:
        assert raw is not None
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 (invalid byte at offset {exc.start})") from None
    row = json.loads(text or "")
    if not isinstance(row, dict):
        raise ValueError(f"a JSON {type(row).__name__}, not an object")
    if _MESSAGES in row:
        row[_MESSAGES] = _messages(row[_MESSAGES])
    return row


def _chat_messages(
    rows: list[dict[str, Any]], numbers: list[int], bad: list[BadLine]
) -> tuple[ChatFormat | None, list[list[Message]] | None, list[bool]]:
    """Canonical messages of chat records in a format other than ``messages``."""
    keep = [True] * len(rows)
    if any(_MESSAGES in row for row in rows):
        return None, None, keep
    fmt = majority_format(rows[:100])
    if fmt is None or fmt is ChatFormat.OPENAI:
        return None, None, keep
    from posttrain.platform.silver.parse import PARSERS  # the chat parsers silver uses

    parsed: list[list[Message]] = []
    for index, (row, number) in enumerate(zip(rows, numbers, strict=True)):
        try:
            parsed.append(PARSERS[fmt](row))
        except RecordError as exc:
            bad.append(BadLine(number, f"not a valid {fmt.value} record: {exc.detail}"))
            keep[index] = False
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            bad.append(BadLine(number, f"not a valid {fmt.value} record: {exc}"))
            keep[index] = False
    return fmt, parsed, keep


def _read_jsonl(path: Path, *, strict: bool) -> RecordsFile:
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    bad: list[BadLine] = []
    for number, text, raw in _jsonl_payloads(path):
        try:
            rows.append(_decode(text, raw))
            numbers.append(number)
        except (ValueError, KeyError, TypeError) as exc:
            if strict:
                raise InputFormatError(
                    path,
                    f"one JSON object per line with {_EXPECTED_MESSAGES}",
                    line=number,
                    found=str(exc),
                ) from None
            bad.append(BadLine(number, str(exc)))
    fmt, parsed, keep = _chat_messages(rows, numbers, bad) if not strict else (None, None, [])
    if parsed is not None and not all(keep):
        rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
        numbers = [n for n, kept in zip(numbers, keep, strict=True) if kept]
        bad.sort(key=lambda b: b.line)
    if not rows:
        found = (
            "an empty file" if not bad else f"no usable line; line {bad[0].line}: {bad[0].reason}"
        )
        raise InputFormatError(path, "at least one JSON record", found=found)
    names = list(dict.fromkeys(key for row in rows for key in row))
    arrays: dict[str, pa.Array] = {}
    mixed: dict[str, MixedColumn] = {}
    for name in names:
        arrays[name], mixed_column = _column(name, [row.get(name) for row in rows], numbers)
        if mixed_column is not None:
            if strict:
                raise InputFormatError(
                    path, f"one JSON type per column; {name!r} holds {mixed_column.describe()}"
                )
            mixed[name] = mixed_column
    return RecordsFile(
        path,
        pa.table(arrays),
        pa.array(numbers, pa.int64()),
        bad,
        mixed,
        fmt,
        None if parsed is None else pa.array(parsed, MESSAGES_TYPE),
    )


def _conform_messages(
    table: pa.Table, path: Path, *, strict: bool
) -> tuple[pa.Table, pa.Array, list[BadLine]]:
    # From numpy, not range(): pyarrow imports pandas to inspect a Python sequence (0.6 s).
    numbers = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    if _MESSAGES not in table.column_names or table.schema.field(_MESSAGES).type == MESSAGES_TYPE:
        return table, numbers, []
    conformed = []
    bad: list[BadLine] = []
    keep: list[bool] = []
    for row, value in enumerate(table.column(_MESSAGES).to_pylist(), start=1):
        try:
            conformed.append(_messages(value))
            keep.append(True)
        except (ValueError, KeyError, TypeError) as exc:
            if strict:
                raise InputFormatError(
                    path, _EXPECTED_MESSAGES, found=f"row {row}: {exc}"
                ) from None
            bad.append(BadLine(row, str(exc)))
            keep.append(False)
    if bad:
        mask = pa.array(keep)
        table, numbers = table.filter(mask), numbers.filter(mask)
    index = table.column_names.index(_MESSAGES)
    table = table.set_column(index, _MESSAGES, pa.array(conformed, type=MESSAGES_TYPE))
    return table, numbers, bad


def _read(path: str | Path, *, strict: bool) -> RecordsFile:
    source = Path(path)
    if source.is_dir():
        raise InputFormatError(source, "a file", found="a folder")
    kind = _kind(source)
    if not source.is_file():
        raise InputFormatError(source, "an existing file", found="nothing at this path")
    if kind == "jsonl":
        return _read_jsonl(source, strict=strict)
    try:
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import
        # pulls in pandas (0.6 s of a dedup command's start-up) for one local file.
        table = pq.ParquetFile(source).read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(source, "a Parquet file", found=str(exc)) from None
    table, numbers, bad = _conform_messages(table, source, strict=strict)
    return RecordsFile(source, table, numbers, bad)


def _is_text_type(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def check_text_column(records: RecordsFile, name: str) -> None:
    """Refuse a text column that is not strings (or a ``messages`` list of conversations).

    Raises:
        InputFormatError: the column mixes JSON types (naming each type's first line), or
            holds numbers or nested values.
    """
    if name in records.mixed:
        raise InputFormatError(
            records.path,
            f"column {name!r} to hold one type (strings)",
            found=records.mixed[name].describe(),
        )
    data_type = records.table.schema.field(name).type
    if _is_text_type(data_type) or (name == _MESSAGES and data_type == MESSAGES_TYPE):
        return
    kind = "a nested type" if pa.types.is_nested(data_type) else "not strings"
    raise InputFormatError(
        records.path,
        f"column {name!r} of strings (or a 'messages' list of {{role, content}})",
        found=f"{data_type} ({kind})",
    )


def read_table_file(path: str | Path) -> pa.Table:
    """A whole Parquet or JSONL file as an Arrow table, ``messages`` conformed.

    Raises:
        InputFormatError: the file is missing, of another kind, or malformed (the message
            names the line or row).
    """
    return _read(path, strict=True).table


def read_records(path: str | Path) -> RecordsFile:
    """The usable records of a Parquet or JSONL file; bad lines are skipped and listed.

    Raises:
        InputFormatError: the file is missing, of another kind, not UTF-8 (UTF-16), or has
            no usable record at all.
    """
    return _read(path, strict=False)


def write_table_file(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as Parquet (zstd) or JSONL, chosen by the file extension."""
    target = Path(path)
    if not target.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES):
        raise InputFormatError(
            target,
            f"an output file ending in one of {[*PARQUET_SUFFIXES, *JSONL_SUFFIXES]}",
            found=repr(target.suffix or "no suffix"),
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.name.lower().endswith(PARQUET_SUFFIXES):
        pq.write_table(table, target, compression="zstd")
        return
    with target.open("w", encoding="utf-8") as out:
        for row in table.to_pylist():
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
