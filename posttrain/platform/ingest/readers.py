"""Stream input files as raw records, and check a file is what it claims.

Inputs: JSON Lines (``.jsonl``/``.ndjson``, also ``.gz`` or ``.zst`` compressed), JSON
(``.json``: an array of records, or JSON Lines, told apart by the first character; also
compressed), Parquet (``.parquet``/``.pq``) and Arrow IPC streams (``.arrow``, the files of a
Hugging Face ``datasets`` ``save_to_disk`` folder).

A raw record is ``(row_index, payload, payload_bytes)``: the 1-based line number (JSONL),
element number (JSON array) or row number (Parquet, Arrow) and the record as received. For
JSONL the payload is the line exactly, without its line terminator; for a JSON array, the
element's text exactly as it appears in the file; for Parquet and Arrow, which have no text
form, the row as canonical JSON (sorted keys, no spaces). Blank JSONL lines are not records.
Text that is not valid UTF-8 is kept byte for byte in ``payload_bytes`` and ``payload`` is
null: bronze never repairs what it received (silver rejects it as ``malformed``).

Reading streams: line by line, element by element, or record batch by record batch,
yielding Arrow record batches of at most ``batch_rows`` rows, so a multi-GB file never sits
in memory.

A line that does not decode inside an otherwise good file is *not* an error here: it is
kept as a bronze row and silver rejects it as ``malformed``. Only a file as a whole that
is not what it claims raises :class:`InputFormatError` (see :func:`inspect_file`), as does a
file in another text encoding (UTF-16/UTF-32), before anything is read from it.

Example:
    >>> fmt = inspect_file("data/samples/math_tutor.jsonl").format  # doctest: +SKIP
    >>> for batch in iter_raw_batches("data/samples/math_tutor.jsonl"):  # doctest: +SKIP
    ...     print(batch.num_rows)
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.formats import (
    CHAT_FORMATS,
    FORMAT_KEYS,
    PREFERENCE_FORMATS,
    ChatFormat,
    describe_format,
    json_error,
    majority_format,
    matching_formats,
)
from posttrain.platform.json_values import json_default

RAW_RECORDS = pa.schema(
    [
        pa.field("row_index", pa.int64(), nullable=False),
        pa.field("payload", pa.string()),
        pa.field("payload_bytes", pa.binary()),
    ]
)
DEFAULT_BATCH_ROWS = 8192
DEFAULT_SAMPLE_RECORDS = 100
_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 1 << 20
# (text, exact bytes when the text is not valid UTF-8)
Payload = tuple[str | None, bytes | None]


class FileKind(StrEnum):
    """How a file stores its records."""

    JSONL = "jsonl"
    JSON = "json"  # a JSON array of records, or JSON Lines under a .json name
    PARQUET = "parquet"
    ARROW = "arrow"  # Arrow IPC stream (or file), as Hugging Face datasets saves them

    @property
    def is_text(self) -> bool:
        return self in (FileKind.JSONL, FileKind.JSON)


SUFFIXES: dict[str, FileKind] = {
    ".jsonl": FileKind.JSONL,
    ".ndjson": FileKind.JSONL,
    ".json": FileKind.JSON,
    ".parquet": FileKind.PARQUET,
    ".pq": FileKind.PARQUET,
    ".arrow": FileKind.ARROW,
}
# Compression suffixes after a text kind's suffix, e.g. ``chats.jsonl.zst``.
COMPRESSIONS = (".gz", ".zst")
INPUT_PATTERNS = ".jsonl, .ndjson, .json (each also .gz or .zst), .parquet, .pq, .arrow"


@dataclass(frozen=True)
class FileType:
    """A file's kind and the compression around it (``None``, ``".gz"`` or ``".zst"``)."""

    kind: FileKind
    compression: str | None = None


def file_type(path: str | Path) -> FileType:
    """The kind and compression of ``path`` from its name, or :class:`InputFormatError`."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else None
    kind = SUFFIXES.get(suffixes[-1]) if suffixes else None
    if kind is None or (compression and not kind.is_text):
        found = "".join(Path(path).suffixes[-2:]) or "no extension"
        raise InputFormatError(path, f"a file ending in one of {INPUT_PATTERNS}", found=repr(found))
    return FileType(kind, compression)


def file_kind(path: str | Path) -> FileKind:
    """The kind of ``path`` from its extension, or :class:`InputFormatError`."""
    return file_type(path).kind


# -- text: encodings, compression ----------------------------------------------------------


def _payload(raw: bytes) -> Payload:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, raw


def _other_encoding(head: bytes) -> str | None:
    """The name iconv knows (``UTF-16``, ``UTF-16LE``, ...) when ``head`` is UTF-16 or
    UTF-32 text, else ``None``."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    sample = head[:4096]
    if len(sample) < 4:
        return None
    # ASCII in UTF-16 puts a NUL in every other byte; UTF-8 JSON has (almost) none.
    even, odd = sample[0::2], sample[1::2]
    if sample.count(0) < 0.3 * len(sample):
        return None
    if sample[:3] == b"\x00\x00\x00" or sample[1:4] == b"\x00\x00\x00":
        return "UTF-32BE" if sample[:3] == b"\x00\x00\x00" else "UTF-32LE"
    # Without a byte order mark, iconv needs the byte order spelled out.
    for nuls, text, name in ((even, odd, "UTF-16BE"), (odd, even, "UTF-16LE")):
        if nuls.count(0) >= 0.4 * len(nuls) and text.count(0) < 0.1 * len(text):
            return name
    return None


def _decompression_error(path: Path, exc: Exception) -> InputFormatError:
    suffix = Path(path).suffix
    return InputFormatError(
        path, f"a readable {suffix} compressed file", found=str(exc) or repr(exc)
    )


@contextlib.contextmanager
def open_bytes(path: Path, compression: str | None) -> Iterator[io.BufferedIOBase]:
    """``path`` as a stream of its (decompressed) bytes; decompression errors name the file."""
    try:
        with path.open("rb") as raw:
            if compression == ".gz":
                with gzip.GzipFile(fileobj=raw) as stream:
                    yield stream
            elif compression == ".zst":
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
                with io.BufferedReader(reader, _CHUNK_BYTES) as stream:
                    yield stream
            else:
                yield raw
    except (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError) as exc:
        raise _decompression_error(path, exc) from exc


def check_encoding(path: Path, ftype: FileType) -> None:
    """Refuse a text file in UTF-16/UTF-32 before anything is read from it.

    Raises:
        InputFormatError: saying "encoding" and the ``iconv`` command that converts it.
    """
    if not ftype.kind.is_text:
        return
    with open_bytes(path, ftype.compression) as stream:
        found = _other_encoding(stream.read(4096))
    if found is not None:
        what = "JSON Lines" if ftype.kind is FileKind.JSONL else "JSON"
        raise InputFormatError(
            path,
            f"UTF-8 {what}",
            found=f"{found} (encoding): convert with iconv -f {found} -t UTF-8",
        )


def _jsonl_lines(path: Path, ftype: FileType) -> Iterator[tuple[int, bytes]]:
    """``(line number, line bytes)`` for every non-blank line, without its terminator."""
    with open_bytes(path, ftype.compression) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]  # an encoding marker, not part of the record
            line = raw.rstrip(b"\n").removesuffix(b"\r")
            if line.strip():
                yield number, line


def _first_char(path: Path, ftype: FileType) -> bytes:
    """The first non-whitespace byte after any UTF-8 BOM (``b""`` for an empty file)."""
    with open_bytes(path, ftype.compression) as stream:
        head = stream.read(_CHUNK_BYTES).removeprefix(_UTF8_BOM).lstrip()
    return head[:1]


def _is_json_array(path: Path, ftype: FileType) -> bool:
    return ftype.kind is FileKind.JSON and _first_char(path, ftype) == b"["


class _JsonArrayError(ValueError):
    def __init__(self, element: int, message: str) -> None:
        self.element = element
        super().__init__(message)


def _json_array_elements(path: Path, ftype: FileType) -> Iterator[tuple[int, bytes]]:
    """``(element number, element bytes)`` of a top-level JSON array, streamed.

    Only the element being decoded is in memory. Bytes that are not UTF-8 are carried
    through (surrogate escapes) so the element's exact bytes come back.

    Raises:
        _JsonArrayError: the array is not well formed, naming the element.
    """
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    with open_bytes(path, ftype.compression) as stream:
        buffer, pos, eof = "", 0, False

        def more() -> bool:
            nonlocal buffer, pos, eof
            if eof:
                return False
            chunk = stream.read(max(_CHUNK_BYTES, len(buffer) - pos))
            eof = not chunk
            buffer = buffer[pos:] + text.decode(chunk, final=eof)
            pos = 0
            return bool(chunk) or bool(buffer)

        def skip_space() -> str:
            nonlocal pos
            while True:
                while pos < len(buffer) and buffer[pos] in " \t\r\n\ufeff":
                    pos += 1
                if pos < len(buffer) or not more():
                    return buffer[pos] if pos < len(buffer) else ""

        if skip_space() != "[":
            raise _JsonArrayError(1, "a JSON array ('[' first)")
        pos += 1
        number = 0
        while True:
            char = skip_space()
            if char == "]":
                pos += 1
                if skip_space():
                    raise _JsonArrayError(number, "nothing after the closing ']'")
                return
            if number:
                if char != ",":
                    raise _JsonArrayError(number + 1, f"',' or ']' after element {number}")
                pos += 1
                char = skip_space()
            number += 1
            if not char:
                raise _JsonArrayError(number, "an element or ']' before the end of the file")
            while True:
                try:
                    _, end = decoder.raw_decode(buffer, pos)
                except json.JSONDecodeError as exc:
                    if more():
                        continue
                    raise _JsonArrayError(number, json_error(exc)) from None
                if end == len(buffer) and not eof and more():
                    continue  # a number or literal may go on in the next chunk
                break
            yield number, buffer[pos:end].encode("utf-8", "surrogateescape")
            pos = end


def _json_array_records(path: Path, ftype: FileType) -> Iterator[tuple[int, bytes]]:
    try:
        yield from _json_array_elements(path, ftype)
    except _JsonArrayError as exc:
        raise InputFormatError(
            path, f"a JSON array of records: {exc}", line=exc.element, unit="element"
        ) from None


# -- rows: Parquet and Arrow ---------------------------------------------------------------


def canonical_json(row: dict[str, Any]) -> str:
    """A Parquet row as JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(
        row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=json_default
    )


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(path, "a Parquet file", found=str(exc)) from exc


def _arrow_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow IPC stream (``save_to_disk``) or IPC file."""
    try:
        with pa.memory_map(str(path)) as source:
            try:
                reader: Any = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                source.seek(0)
                file_reader = pa.ipc.open_file(source)
                reader = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
            yield from reader
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFormatError(path, "an Arrow IPC stream or file", found=str(exc)) from exc


def _table_rows(
    path: Path, kind: FileKind, batch_rows: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for every row, reading one record batch at a time."""
    batches: Iterator[pa.RecordBatch] = (
        _open_parquet(path).iter_batches(batch_size=batch_rows)
        if kind is FileKind.PARQUET
        else _arrow_batches(path)
    )
    number = 0
    for batch in batches:
        for start in range(0, batch.num_rows, batch_rows):
            for row in batch.slice(start, batch_rows).to_pylist():
                number += 1
                yield number, row


def _raw_records(path: Path, ftype: FileType, batch_rows: int) -> Iterator[tuple[int, bytes]]:
    """``(number, exact bytes)`` of every record: text as received, rows as canonical JSON."""
    if ftype.kind.is_text:
        check_encoding(path, ftype)
        if _is_json_array(path, ftype):
            return _json_array_records(path, ftype)
        return _jsonl_lines(path, ftype)
    rows = _table_rows(path, ftype.kind, batch_rows)
    return ((number, canonical_json(row).encode()) for number, row in rows)


def _raw_batch(numbers: tuple[int, ...], blobs: tuple[bytes, ...]) -> pa.RecordBatch:
    raw = pa.array(blobs, pa.binary())
    try:  # one vectorized UTF-8 check for the batch; almost every batch passes it
        texts, kept = raw.cast(pa.string()), pa.nulls(len(raw), pa.binary())
    except pa.ArrowInvalid:
        decoded = [_payload(blob) for blob in blobs]
        texts = pa.array([text for text, _ in decoded], pa.string())
        kept = pa.array([blob for _, blob in decoded], pa.binary())
    return pa.record_batch([pa.array(numbers, pa.int64()), texts, kept], schema=RAW_RECORDS)


def iter_raw_batches(
    path: str | Path, *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream ``path`` as record batches with the :data:`RAW_RECORDS` schema, in file order.

    Raises:
        InputFormatError: the extension is unknown, a ``.parquet`` file is not Parquet, a
            text file is UTF-16/UTF-32, or a JSON array or compressed stream is broken.
    """
    path = Path(path)
    records = _raw_records(path, file_type(path), batch_rows)
    while chunk := list(islice(records, batch_rows)):
        numbers, blobs = zip(*chunk, strict=True)
        yield _raw_batch(numbers, blobs)


def check_readable(path: str | Path) -> None:
    """Read ``path`` to its end without keeping anything: a truncated compressed file or a
    broken JSON array fails here, before ingest writes, instead of half-way through.

    Raises:
        InputFormatError: naming the file (and the element of a broken JSON array).
    """
    path = Path(path)
    ftype = file_type(path)
    if not ftype.kind.is_text:
        return
    if _is_json_array(path, ftype):
        for _ in _json_array_records(path, ftype):
            pass
    elif ftype.compression:
        with open_bytes(path, ftype.compression) as stream:
            while stream.read(_CHUNK_BYTES):
                pass


# -- checking a file before it is ingested ----------------------------------------------


@dataclass(frozen=True)
class FileInspection:
    """What :func:`inspect_file` learned about a file from its first records."""

    path: Path
    kind: FileKind
    format: ChatFormat
    detected: ChatFormat | None  # by majority; differs from ``format`` when overridden


def _decoded_sample(path: Path, ftype: FileType, size: int) -> list[tuple[int, Any]]:
    """The first ``size`` records that decode, as ``(number, value)``.

    Raises :class:`InputFormatError` when the file has no records or none of the first
    ``size`` decodes: that is a file that is not JSONL at all, not one bad line.
    """
    if not ftype.kind.is_text:
        return list(islice(_table_rows(path, ftype.kind, size), size))
    check_encoding(path, ftype)
    is_array = _is_json_array(path, ftype)
    lines = _json_array_records(path, ftype) if is_array else _jsonl_lines(path, ftype)
    sample: list[tuple[int, Any]] = []
    first_error: tuple[int, str] | None = None
    for number, raw in islice(lines, size):
        try:
            sample.append((number, json.loads(raw.decode("utf-8"))))
        except UnicodeDecodeError as exc:
            first_error = first_error or (number, f"invalid UTF-8 at byte {exc.start}")
        except json.JSONDecodeError as exc:
            shown = raw[:60].decode("utf-8", errors="replace")
            first_error = first_error or (number, f"{json_error(exc)}: {shown!r}")
    if not sample and first_error is not None:
        line_number, found = first_error
        expected = (
            "a JSON array of records" if is_array else "JSON Lines (one JSON object per line)"
        )
        raise InputFormatError(
            path, expected, line=line_number, found=found, unit=_unit(ftype, is_array)
        )
    return sample


def _unit(ftype: FileType, is_array: bool) -> str:
    return "element" if is_array else "line" if ftype.kind.is_text else "row"


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
    """Check ``path`` is an input file (see the module docstring) of chat records and find
    their format.

    The format is the majority over the first ``sample_records`` decodable records, or
    ``override`` when given; an override must still fit at least one sampled record, so
    ``--format alpaca`` on a file of OpenAI ``messages`` fails here instead of rejecting
    every record later.

    Raises:
        InputFormatError: naming the file, the line (or row) and what was expected.
    """
    path = Path(path)
    ftype = file_type(path)
    if not path.is_file():
        raise InputFormatError(path, "an existing file", found="nothing at that path")
    sample = _decoded_sample(path, ftype, sample_records)
    if not sample:
        raise InputFormatError(path, "at least one record", found="an empty file")
    unit = _unit(ftype, ftype.kind.is_text and _is_json_array(path, ftype))
    detected = majority_format(value for _, value in sample)
    chosen = override or detected
    if chosen is None:
        chat = [fmt for fmt in FORMAT_KEYS if fmt in CHAT_FORMATS]
        preference = [fmt for fmt in FORMAT_KEYS if fmt in PREFERENCE_FORMATS]
        expected = (
            "records in a known chat format: "
            + "; ".join(map(describe_format, chat))
            + "; or preference format: "
            + "; ".join(map(describe_format, preference))
        )
        number, value = sample[0]
        raise InputFormatError(path, expected, line=number, found=_keys_found(value), unit=unit)
    if override is not None and not any(override in matching_formats(v) for _, v in sample):
        number, value = sample[0]
        raise InputFormatError(
            path,
            f"{describe_format(override)} records, as the format override says",
            line=number,
            found=_keys_found(value),
            unit=unit,
        )
    return FileInspection(path=path, kind=ftype.kind, format=chosen, detected=detected)
