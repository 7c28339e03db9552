"""Append raw input records to ``bronze.records``, once each, with their provenance.

Record identity: ``record_id`` is the first 32 hex digits of the SHA-256 of
``source \\0 file name \\0 payload bytes \\0 occurrence``, where the file name is the
base name of a file given directly, or the path relative to the folder given; the payload
bytes are the record exactly as received; and the occurrence is 1 for the first record of
the file with these bytes, 2 for the second identical one, and so on. The line number is
deliberately not part of it (``row_index`` is stored beside it). So

* re-ingesting a file adds nothing, a file that grew adds only its new lines, and a line
  inserted at the top adds only that line;
* identical lines in one file, and the same record arriving from two files or two sources,
  stay separate bronze rows, and silver's exact deduplication rejects the copies with a
  reason instead of bronze losing them silently;
* moving a file (or a whole folder) to another folder does not make its records new.

Every file of one :func:`ingest` call is checked (readable to its end, a known input kind
and chat format, UTF-8) before anything is written. The ``batch_id`` is derived from the
files' content hashes and sources unless given, so the same inputs get the same batch id.
A folder's files that are not inputs are skipped and listed in the report with why.

Each source's metadata (workspace, license, description) is recorded once in
``lineage.sources`` (:mod:`.source_metadata`), where it can be corrected later.

Example:
    >>> report = ingest(warehouse, load_sources("data/sources.yaml"))  # doctest: +SKIP
    >>> report.rows_added  # doctest: +SKIP
    2740
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo, In, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.folders import InputFile, SkippedFile
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import (
    DEFAULT_BATCH_ROWS,
    INPUT_PATTERNS,
    FileInspection,
    check_readable,
    inspect_file,
    iter_raw_batches,
)
from posttrain.platform.ingest.source_metadata import record_sources
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
    # The name record ids hash (the path under the spec's folder); the base name by default.
    name: str | None = None
    split: str | None = None

    @property
    def path(self) -> Path:
        return self.inspection.path

    @property
    def id_name(self) -> str:
        return self.name or self.path.name

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
    name: str = ""  # the path under the spec's folder (the base name for a file)
    split: str | None = None

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
    skipped: list[SkippedFile] = field(default_factory=list)
    sources_updated: list[str] = field(default_factory=list)

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


def _plan(spec: SourceSpec, file: InputFile) -> PlannedFile:
    inspection = inspect_file(file.path, override=spec.format)
    check_readable(file.path)
    return PlannedFile(spec, inspection, _file_sha256(file.path), file.name, file.split)


def plan(specs: Sequence[SourceSpec]) -> tuple[list[PlannedFile], list[SkippedFile]]:
    """Check every file of every spec and detect its format; writes nothing.

    Returns:
        The files to ingest, and the files of the specs' folders that are skipped.

    Raises:
        InputFormatError: the first file that is not what it claims, naming file and line,
            or a folder with no input files.
        ConfigError: two specs share a source name or a path.
    """
    validate_specs(list(specs), "ingest")
    planned: list[PlannedFile] = []
    skipped: list[SkippedFile] = []
    for spec in specs:
        scan = spec.scan()
        if not scan.files:
            found = "none" + "".join(
                f"; skipped {s.path.name}: {s.reason}" for s in scan.skipped[:5]
            )
            raise InputFormatError(
                spec.path, f"a folder holding {INPUT_PATTERNS} files", found=found
            )
        planned += [_plan(spec, file) for file in scan.files]
        skipped += scan.skipped
    return planned, skipped


def plan_files(specs: Sequence[SourceSpec]) -> list[PlannedFile]:
    """The files of :func:`plan`, each checked; writes nothing."""
    return plan(specs)[0]


def default_batch_id(files: Sequence[PlannedFile]) -> str:
    """16 hex digits from the sources and content hashes of ``files``, order-independent."""
    parts = sorted(f"{f.spec.source}\0{f.sha256}" for f in files)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class RecordIdentity:
    """Record ids of one file's records, fed in file order (see the module docstring).

    It remembers 8 bytes of the payload's hash per distinct payload to count occurrences.
    Two payloads whose 8 bytes collide only share a counter: their ids still differ (the
    payload is hashed), and the collision is the same on every run, so ids stay stable.
    """

    def __init__(self, source: str, file_name: str) -> None:
        self._prefix = hashlib.sha256(f"{source}\0{file_name}\0".encode())
        self._seen: dict[bytes, int] = {}

    def next_id(self, payload: bytes) -> str:
        """The id of the next record of the file, whose exact bytes are ``payload``."""
        digest = self._prefix.copy()
        digest.update(payload)
        key = digest.copy().digest()[:8]  # one pass over the payload serves both hashes
        occurrence = self._seen.get(key, 0) + 1
        self._seen[key] = occurrence
        digest.update(b"\0%d" % occurrence)
        return digest.hexdigest()[:32]

    def ids(self, raw: pa.RecordBatch | pa.Table) -> pa.Array:
        """The ids of a batch of raw records (:data:`~.readers.RAW_RECORDS`), in order."""
        return pa.array([self.next_id(p) for p in payload_bytes(raw)], pa.string())


def payload_bytes(raw: pa.RecordBatch | pa.Table) -> list[bytes]:
    """Each raw record's exact bytes: ``payload_bytes`` when set, else the UTF-8 payload."""
    as_bytes = pc.cast(raw["payload"], pa.binary())  # zero-copy: UTF-8 text is its bytes
    if "payload_bytes" in raw.schema.names:
        as_bytes = pc.coalesce(as_bytes, raw["payload_bytes"])
    blobs: list[bytes] = as_bytes.to_pylist()
    return blobs


def record_ids(source: str, file_name: str, batches: Iterable[pa.RecordBatch]) -> list[str]:
    """The ``record_id`` of every raw record of one file, given its batches in file order."""
    identity = RecordIdentity(source, file_name)
    return [record_id for batch in batches for record_id in identity.ids(batch).to_pylist()]


def bronze_rows(
    raw: pa.RecordBatch,
    planned: PlannedFile,
    *,
    batch_id: str,
    ingested_at: datetime,
    identity: RecordIdentity | None = None,
) -> pa.Table:
    """Bronze rows (``BRONZE_RECORDS``) for a batch of raw records from ``planned``.

    ``identity`` numbers the occurrences of identical records across the file's batches;
    a fresh one (right for the first batch) by default.
    """
    rows = raw.num_rows
    spec = planned.spec
    identity = identity or RecordIdentity(spec.source, planned.id_name)

    def constant(value: str | None) -> pa.Array:
        return pa.repeat(pa.scalar(value, pa.string()), rows)

    columns = {
        "record_id": identity.ids(raw),
        "payload": raw["payload"],
        "payload_bytes": raw["payload_bytes"],
        "row_index": raw["row_index"],
        "source": constant(spec.source),
        "source_uri": constant(planned.path.resolve().as_uri()),
        "workspace": constant(spec.workspace),
        "license": constant(spec.license),
        "batch_id": constant(batch_id),
        "format": constant(planned.format.value),
        "split": constant(planned.split),
        "ingested_at": pa.repeat(pa.scalar(ingested_at, TIMESTAMP_TYPE), rows),
    }
    return pa.Table.from_pydict(columns, schema=BRONZE_RECORDS)


def upgrade_bronze_schema(warehouse: Warehouse) -> bool:
    """Evolve a ``bronze.records`` made by an older posttrain to the declared schema.

    Adds the optional columns it lacks (``payload_bytes``, ``split``) and makes ``payload``
    optional: metadata-only Iceberg schema changes; no data file is rewritten. Returns
    whether the schema changed.
    """
    if not warehouse.exists(BRONZE_TABLE):
        return False
    table = warehouse.table(BRONZE_TABLE)
    current = {f.name: f for f in table.schema().fields}
    if all(f.name in current and (f.nullable or current[f.name].required) for f in BRONZE_RECORDS):
        return False
    with table.update_schema() as update:
        update.union_by_name(BRONZE_RECORDS)
    return True


def _existing_ids(warehouse: Warehouse, source: str) -> pa.Array:
    """Record ids already in bronze for ``source`` (ids embed the source, so no others match)."""
    if not warehouse.exists(BRONZE_TABLE):
        return pa.array([], pa.string())
    same_source = EqualTo(term=Reference("source"), value=literal(source))
    ids = warehouse.read(BRONZE_TABLE, columns=("record_id",), row_filter=same_source)
    return pa.concat_arrays(
        [ids["record_id"].combine_chunks().cast(pa.string()), _erased_ids(warehouse)]
    )


def _erased_ids(warehouse: Warehouse) -> pa.Array:
    """Record ids ``posttrain forget`` erased: an erased record is never ingested again."""
    if not warehouse.exists(TableName.LINEAGE_ERASURES):
        return pa.array([], pa.string())
    erased = warehouse.read(TableName.LINEAGE_ERASURES, columns=("record_ids",))["record_ids"]
    if not len(erased):
        return pa.array([], pa.string())
    return pc.list_flatten(erased.combine_chunks()).cast(pa.string())


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
    identity = RecordIdentity(planned.spec.source, planned.id_name)
    for raw in iter_raw_batches(planned.path, batch_rows=batch_rows):
        rows = bronze_rows(
            raw, planned, batch_id=batch_id, ingested_at=ingested_at, identity=identity
        )
        if len(existing):
            rows = rows.filter(pc.invert(pc.is_in(rows["record_id"], value_set=existing)))
        writer.add(rows)
        added += rows.num_rows
        tracker.advance(raw.num_rows)
    tracker.finish()
    return FileReport(
        planned.path,
        planned.spec.source,
        planned.format,
        tracker.rows_done,
        added,
        name=planned.id_name,
        split=planned.split,
    )


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
        Per file: rows read, rows added, rows already present; the last snapshot id; the
        files of the specs' folders that were skipped, and why.

    Raises:
        InputFormatError: a file is not an input kind, not UTF-8, unreadable to its end,
            or has no known chat format.
        ConfigError: two specs share a source name or a path.
    """
    started = time.monotonic()
    files, skipped = plan(specs)
    upgrade_bronze_schema(warehouse)
    sources_updated = record_sources(warehouse, specs)
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
    return IngestReport(
        batch_id,
        reports,
        writer.snapshot_id,
        time.monotonic() - started,
        skipped=skipped,
        sources_updated=sources_updated,
    )
