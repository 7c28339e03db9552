"""Append raw input records to ``bronze.records``, once each, with their provenance.

Record identity: ``record_id`` is the first 32 hex digits of the SHA-256 of
``source \\0 file name \\0 row_index \\0 payload`` (file name = basename; row_index = the
1-based line or row number). So

* re-ingesting a file adds nothing (and a file that grew adds only its new lines);
* the same record arriving from two places stays two bronze rows, and silver's exact
  deduplication rejects the copy with a reason instead of bronze losing it silently;
* moving a file to another folder does not make its records new.

Every file of one :func:`ingest` call is checked (readable, JSONL or Parquet, a known chat
format) before anything is written. The ``batch_id`` is derived from the files' content
hashes and sources unless given, so the same inputs get the same batch id.

Example:
    >>> report = ingest(warehouse, load_sources("data/sources.yaml"))  # doctest: +SKIP
    >>> report.rows_added  # doctest: +SKIP
    2740
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo, In, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import (
    DEFAULT_BATCH_ROWS,
    SUFFIXES,
    FileInspection,
    inspect_file,
    iter_raw_batches,
)
from posttrain.platform.ingest.sources import SourceSpec, validate_specs
from posttrain.platform.lineage import Lineage
from posttrain.platform.progress import NullProgress, ProgressSink, ProgressTracker
from posttrain.platform.schemas import BRONZE_RECORDS, TIMESTAMP_TYPE, TableName
from posttrain.platform.warehouse import Warehouse

BRONZE_TABLE = TableName.BRONZE_RECORDS
# Rows buffered before one Iceberg append: small inputs make one snapshot per call,
# large ones a snapshot every this many rows, so memory stays bounded.
DEFAULT_COMMIT_ROWS = 200_000


@dataclass(frozen=True)
class PlannedFile:
    """A checked input file: which spec it came from, its format and content hash."""

    spec: SourceSpec
    inspection: FileInspection
    sha256: str

    @property
    def path(self) -> Path:
        return self.inspection.path

    @property
    def format(self) -> ChatFormat:
        return self.inspection.format


@dataclass(frozen=True)
class FileReport:
    """What ingesting one file did."""

    path: Path
    source: str
    format: ChatFormat
    rows_read: int
    rows_added: int

    @property
    def already_present(self) -> int:
        return self.rows_read - self.rows_added


@dataclass(frozen=True)
class IngestReport:
    """What one :func:`ingest` call did, file by file."""

    batch_id: str
    files: list[FileReport]
    snapshot_id: int | None
    elapsed_s: float

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_added(self) -> int:
        return sum(f.rows_added for f in self.files)

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0


class IngestConfig(FrozenConfig):
    """The identity of one ingest call, hashed into the bronze snapshot summary."""

    sources: tuple[SourceSpec, ...]
    batch_id: str


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def plan_files(specs: Sequence[SourceSpec]) -> list[PlannedFile]:
    """Check every file of every spec and detect its format; writes nothing.

    Raises:
        InputFormatError: the first file that is not what it claims, naming file and line,
            or a folder with no input files.
        ConfigError: two specs share a source name or a path.
    """
    validate_specs(list(specs), "ingest")
    planned = []
    for spec in specs:
        files = spec.files()
        if not files:
            raise InputFormatError(
                spec.path, f"a folder holding {'/'.join(SUFFIXES)} files", found="none"
            )
        planned += [
            PlannedFile(spec, inspect_file(p, override=spec.format), _file_sha256(p)) for p in files
        ]
    return planned


def default_batch_id(files: Sequence[PlannedFile]) -> str:
    """16 hex digits from the sources and content hashes of ``files``, order-independent."""
    parts = sorted(f"{f.spec.source}\0{f.sha256}" for f in files)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def record_ids(source: str, file_name: str, row_index: pa.Array, payload: pa.Array) -> pa.Array:
    """The ``record_id`` of each raw record (see the module docstring for the rule)."""
    prefix = f"{source}\0{file_name}\0".encode()
    ids = [
        hashlib.sha256(prefix + f"{index}\0{text}".encode()).hexdigest()[:32]
        for index, text in zip(row_index.to_pylist(), payload.to_pylist(), strict=True)
    ]
    return pa.array(ids, pa.string())


def bronze_rows(
    raw: pa.RecordBatch, planned: PlannedFile, *, batch_id: str, ingested_at: datetime
) -> pa.Table:
    """Bronze rows (``BRONZE_RECORDS``) for a batch of raw records from ``planned``."""
    rows = raw.num_rows
    spec = planned.spec

    def constant(value: str) -> pa.Array:
        return pa.repeat(pa.scalar(value, pa.string()), rows)

    columns = {
        "record_id": record_ids(spec.source, planned.path.name, raw["row_index"], raw["payload"]),
        "payload": raw["payload"],
        "row_index": raw["row_index"],
        "source": constant(spec.source),
        "source_uri": constant(planned.path.resolve().as_uri()),
        "workspace": constant(spec.workspace),
        "license": constant(spec.license),
        "batch_id": constant(batch_id),
        "format": constant(planned.format.value),
        "ingested_at": pa.repeat(pa.scalar(ingested_at, TIMESTAMP_TYPE), rows),
    }
    return pa.Table.from_pydict(columns, schema=BRONZE_RECORDS)


def _existing_ids(warehouse: Warehouse, source: str) -> pa.Array:
    """Record ids already in bronze for ``source`` (ids embed the source, so no others match)."""
    if not warehouse.exists(BRONZE_TABLE):
        return pa.array([], pa.string())
    same_source = EqualTo(term=Reference("source"), value=literal(source))
    ids = warehouse.read(BRONZE_TABLE, columns=("record_id",), row_filter=same_source)
    return ids["record_id"].combine_chunks()


class _BronzeWriter:
    """Buffers new bronze rows and appends them about ``commit_rows`` at a time."""

    def __init__(self, warehouse: Warehouse, lineage: Lineage, commit_rows: int) -> None:
        self.warehouse = warehouse
        self.lineage = lineage
        self.commit_rows = commit_rows
        self.snapshot_id = warehouse.snapshot_id(BRONZE_TABLE)
        self._buffer: list[pa.Table] = []
        self._buffered_rows = 0

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self._buffer.append(rows)
            self._buffered_rows += rows.num_rows
        if self._buffered_rows >= self.commit_rows:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            data = pa.concat_tables(self._buffer)
            # Another ingest of the same file may have committed since ``existing`` was
            # read: append_new re-checks the ids against the snapshot it commits on.
            sources = pc.unique(data["source"]).to_pylist()
            result = self.warehouse.append_new(
                BRONZE_TABLE,
                data,
                "record_id",
                self.lineage,
                scope=In(term=Reference("source"), values={literal(s) for s in sources}),
            )
            self.snapshot_id = result.snapshot_id
            self._buffer, self._buffered_rows = [], 0


def _ingest_file(
    planned: PlannedFile,
    existing: pa.Array,
    writer: _BronzeWriter,
    tracker: ProgressTracker,
    *,
    batch_id: str,
    ingested_at: datetime,
    batch_rows: int,
) -> FileReport:
    """Stream one file into ``writer``, skipping records whose id is in ``existing``."""
    added = 0
    for raw in iter_raw_batches(planned.path, batch_rows=batch_rows):
        rows = bronze_rows(raw, planned, batch_id=batch_id, ingested_at=ingested_at)
        if len(existing):
            rows = rows.filter(pc.invert(pc.is_in(rows["record_id"], value_set=existing)))
        writer.add(rows)
        added += rows.num_rows
        tracker.advance(raw.num_rows)
    tracker.finish()
    return FileReport(planned.path, planned.spec.source, planned.format, tracker.rows_done, added)


def ingest(
    warehouse: Warehouse,
    specs: Sequence[SourceSpec],
    *,
    batch_id: str | None = None,
    progress: ProgressSink | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    commit_rows: int = DEFAULT_COMMIT_ROWS,
) -> IngestReport:
    """Append the records of every file in ``specs`` to ``bronze.records``, once each.

    Args:
        warehouse: where ``bronze.records`` lives (created on first use).
        specs: the inputs; all are checked before the first write.
        batch_id: stored on every new row; by default derived from the files' contents.
        progress: receives rows-done updates per file.
        batch_rows: raw records read per Arrow batch.
        commit_rows: rows buffered per Iceberg append (one snapshot per append).

    Returns:
        Per file: rows read, rows added, rows already present; the last snapshot id.

    Raises:
        InputFormatError: a file is not JSONL/Parquet or has no known chat format.
        ConfigError: two specs share a source name or a path.
    """
    started = time.monotonic()
    files = plan_files(specs)
    batch_id = batch_id or default_batch_id(files)
    config = IngestConfig(sources=tuple(specs), batch_id=batch_id)
    writer = _BronzeWriter(
        warehouse, Lineage("ingest", config_hash=config.config_hash()), commit_rows
    )
    ingested_at = datetime.now(UTC)
    existing = {
        source: _existing_ids(warehouse, source)
        for source in sorted({f.spec.source for f in files})
    }
    reports = [
        _ingest_file(
            planned,
            existing[planned.spec.source],
            writer,
            ProgressTracker(f"ingest {planned.path.name}", None, progress or NullProgress()),
            batch_id=batch_id,
            ingested_at=ingested_at,
            batch_rows=batch_rows,
        )
        for planned in files
    ]
    writer.flush()
    return IngestReport(batch_id, reports, writer.snapshot_id, time.monotonic() - started)
