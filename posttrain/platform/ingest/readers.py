"""Stream JSONL and Parquet files as raw records, and check a file is what it claims.

A raw record is ``(row_index, payload)``: the 1-based line number (JSONL) or row number
(Parquet) and the record text as received. For JSONL the payload is the line exactly,
without its line terminator; for Parquet, which has no text form, it is the row as
canonical JSON (sorted keys, no spaces). Blank JSONL lines are not records.

Reading streams: JSONL line by line and Parquet by record batches, yielding Arrow record
batches of at most ``batch_rows`` rows, so a multi-GB file never sits in memory.

A line that does not decode inside an otherwise good file is *not* an error here: it is
kept as a bronze row and silver rejects it as ``malformed``. Only a file as a whole that
is not what it claims raises :class:`InputFormatError` (see :func:`inspect_file`).

Example:
    >>> fmt = inspect_file("data/samples/math_tutor.jsonl").format  # doctest: +SKIP
    >>> for batch in iter_raw_batches("data/samples/math_tutor.jsonl"):  # doctest: +SKIP
    ...     print(batch.num_rows)
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.formats import (
    FORMAT_KEYS,
    ChatFormat,
    describe_format,
    json_error,
    majority_format,
    matching_formats,
)

RAW_RECORDS = pa.schema(
    [
        pa.field("row_index", pa.int64(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
    ]
)
DEFAULT_BATCH_ROWS = 8192
DEFAULT_SAMPLE_RECORDS = 100
_UTF8_BOM = b"\xef\xbb\xbf"


class FileKind(StrEnum):
    """How a file stores its records."""

    JSONL = "jsonl"
    PARQUET = "parquet"

    @property
    def unit(self) -> str:
        """What a record's number counts in this kind of file, for messages."""
        return "line" if self is FileKind.JSONL else "row"


SUFFIXES: dict[str, FileKind] = {
    ".jsonl": FileKind.JSONL,
    ".ndjson": FileKind.JSONL,
    ".parquet": FileKind.PARQUET,
    ".pq": FileKind.PARQUET,
}


def file_kind(path: str | Path) -> FileKind:
    """The kind of ``path`` from its extension, or :class:`InputFormatError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(sorted(SUFFIXES))
        raise InputFormatError(
            path, f"a file ending in one of {known}", found=f"{suffix or 'no extension'!r}"
        )
    return SUFFIXES[suffix]


# -- streaming -------------------------------------------------------------------------


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every non-blank line, without its line terminator."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]  # an encoding marker, not part of the record
            line = raw.rstrip(b"\n").removesuffix(b"\r")
            if line.strip():
                # Invalid UTF-8 cannot be an Arrow string; silver rejects the replaced text.
                yield number, line.decode("utf-8", errors="replace")


def _json_default(value: Any) -> Any:
    """JSON form of the Parquet values :mod:`json` does not know."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot represent {type(value).__name__} as JSON")


def canonical_json(row: dict[str, Any]) -> str:
    """A Parquet row as JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(
        row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_json_default
    )


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(path, "a Parquet file", found=str(exc)) from exc


def _parquet_rows(path: Path, batch_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for every row, reading one record batch at a time."""
    number = 0
    for batch in _open_parquet(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _raw_records(path: Path, kind: FileKind, batch_rows: int) -> Iterator[tuple[int, str]]:
    if kind is FileKind.JSONL:
        return _jsonl_lines(path)
    return ((number, canonical_json(row)) for number, row in _parquet_rows(path, batch_rows))


def iter_raw_batches(
    path: str | Path, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream ``path`` as record batches with the :data:`RAW_RECORDS` schema, in file order.

    Raises:
        InputFormatError: the extension is unknown, or a ``.parquet`` file is not Parquet.
    """
    path = Path(path)
    records = _raw_records(path, file_kind(path), batch_rows)
    while chunk := list(islice(records, batch_rows)):
        numbers, payloads = zip(*chunk, strict=True)
        yield pa.record_batch(
            [pa.array(numbers, pa.int64()), pa.array(payloads, pa.string())], schema=RAW_RECORDS
        )


# -- checking a file before it is ingested ----------------------------------------------


@dataclass(frozen=True)
class FileInspection:
    """What :func:`inspect_file` learned about a file from its first records."""

    path: Path
    kind: FileKind
    format: ChatFormat
    detected: ChatFormat | None  # by majority; differs from ``format`` when overridden


def _decoded_sample(path: Path, kind: FileKind, size: int) -> list[tuple[int, Any]]:
    """The first ``size`` records that decode, as ``(number, value)``.

    Raises :class:`InputFormatError` when the file has no records or none of the first
    ``size`` decodes: that is a file that is not JSONL at all, not one bad line.
    """
    if kind is FileKind.PARQUET:
        return list(islice(_parquet_rows(path, size), size))
    sample: list[tuple[int, Any]] = []
    first_error: tuple[int, str] | None = None
    for number, line in islice(_jsonl_lines(path), size):
        try:
            sample.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            first_error = first_error or (number, f"{json_error(exc)}: {line[:60]!r}")
    if not sample and first_error is not None:
        line_number, found = first_error
        raise InputFormatError(
            path, "JSON Lines (one JSON object per line)", line=line_number, found=found
        )
    return sample


def _keys_found(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value)
        shown = ", ".join(repr(key) for key in keys[:8]) + (", ..." if len(keys) > 8 else "")
        return f"an object with keys [{shown}]"
    return f"a JSON {type(value).__name__}, not an object"


def inspect_file(
    path: str | Path,
    *,
    override: ChatFormat | None = None,
    sample_records: int = DEFAULT_SAMPLE_RECORDS,
) -> FileInspection:
    """Check ``path`` is a JSONL or Parquet file of chat records and find their format.

    The format is the majority over the first ``sample_records`` decodable records, or
    ``override`` when given; an override must still fit at least one sampled record, so
    ``--format alpaca`` on a file of OpenAI ``messages`` fails here instead of rejecting
    every record later.

    Raises:
        InputFormatError: naming the file, the line (or row) and what was expected.
    """
    path = Path(path)
    kind = file_kind(path)
    if not path.is_file():
        raise InputFormatError(path, "an existing file", found="nothing at that path")
    sample = _decoded_sample(path, kind, sample_records)
    if not sample:
        raise InputFormatError(path, "at least one record", found="an empty file")
    detected = majority_format(value for _, value in sample)
    chosen = override or detected
    if chosen is None:
        expected = "records in a known chat format: " + "; ".join(map(describe_format, FORMAT_KEYS))
        number, value = sample[0]
        raise InputFormatError(
            path, expected, line=number, found=_keys_found(value), unit=kind.unit
        )
    if override is not None and not any(override in matching_formats(v) for _, v in sample):
        number, value = sample[0]
        raise InputFormatError(
            path,
            f"{describe_format(override)} records, as the format override says",
            line=number,
            found=_keys_found(value),
            unit=kind.unit,
        )
    return FileInspection(path=path, kind=kind, format=chosen, detected=detected)
