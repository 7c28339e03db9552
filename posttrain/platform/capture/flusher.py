"""The flusher: sealed log segments → ``bronze.records`` / ``bronze.outcomes``, then trim.

One sealed segment is one micro-batch: its rows are appended to each table in one commit
(through the warehouse's commit loop), the snapshot summary carrying the segment's id
(``posttrain.capture.batch``). Only after both commits is the segment deleted. A segment
found again after a crash is replayed: a table whose snapshots already carry its batch id
is skipped, so nothing lands twice and nothing is lost.

The flusher also seals the active segment when its oldest event has waited
``flush_interval_s``, so an idle service still lands what it accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from posttrain.platform.capture.wal import WriteAheadLog, read_segment
from posttrain.platform.ingest.source_metadata import register_source
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import BRONZE_OUTCOMES, BRONZE_RECORDS, TIMESTAMP_TYPE, TableName
from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from posttrain.platform.capture.service import Metrics

log = logging.getLogger(__name__)

BATCH_KEY = "posttrain.capture.batch"
EVENTS_KEY = "posttrain.capture.events"
STAGE = "capture"
CAPTURE_URI_PREFIX = "capture://"


def capture_source(workspace: str, source: str) -> str:
    """The bronze ``source`` of a captured event: source names are global, so the
    workspace prefixes the client's source (``team-a/support-bot``)."""
    return f"{workspace}/{source}"


def entries_of(segment: Path) -> Iterator[dict[str, Any]]:
    """The decoded entries of one log segment, in order."""
    for payload in read_segment(segment):
        yield orjson.loads(payload)


_STRING_FIELDS = (
    "record_id",
    "payload",
    "source",
    "source_uri",
    "workspace",
    "format",
    "outcome_id",
    "kind",
    "text",
    "event_id",
    "other_record_id",
)
# A log entry as Arrow reads it: the record and the outcome rows' fields in one struct.
_ENTRY_SCHEMA = pa.schema(
    [
        pa.field("t", pa.string()),
        pa.field("at", pa.int64()),
        pa.field(
            "row",
            pa.struct(
                [pa.field(name, pa.string()) for name in _STRING_FIELDS]
                + [pa.field("value", pa.float64())]
            ),
        ),
    ]
)


def _entries(segment: Path) -> pa.Table:
    """A segment's entries as one Arrow table (``t``, ``at``, ``row``).

    Arrow's JSON reader parses them in C++ without the GIL: decoding entry by entry in
    Python held the GIL for as long as accepting the events had, and the event loop
    answering requests waited for it during every flush.
    """
    lines = list(read_segment(segment))
    if not lines:
        return _ENTRY_SCHEMA.empty_table()
    data = b"\n".join(lines)
    # A block must hold the longest line; the reader splits blocks only between lines.
    block = min(max(1 << 20, 2 * max(map(len, lines))), (1 << 31) - 1)
    return pa_json.read_json(
        pa.py_buffer(data),
        read_options=pa_json.ReadOptions(block_size=block),
        parse_options=pa_json.ParseOptions(
            explicit_schema=_ENTRY_SCHEMA, unexpected_field_behavior="ignore"
        ),
    )


def segment_tables(segment: Path) -> tuple[pa.Table, pa.Table, int]:
    """The bronze.records rows, bronze.outcomes rows and number of entries of a segment."""
    batch_id = segment.stem
    entries = _entries(segment)
    is_record = pc.equal(entries["t"], "r")
    if pc.all(is_record).as_py() is not False:  # the usual segment: sessions and turns only
        records, outcomes = entries, entries.slice(0, 0)
    else:
        records = entries.filter(is_record)
        outcomes = entries.filter(pc.invert(is_record))

    def field(table: pa.Table, name: str) -> pa.ChunkedArray:
        return pc.struct_field(table["row"], name)

    n = records.num_rows
    columns: dict[str, Any] = {
        name: field(records, name)
        for name in ("record_id", "payload", "source", "source_uri", "workspace", "format")
    }
    columns["payload_bytes"] = pa.nulls(n, pa.binary())
    columns["row_index"] = pa.array([1] * n, pa.int64())
    columns["license"] = pa.nulls(n, pa.string())
    columns["batch_id"] = pa.array([batch_id] * n, pa.string())
    columns["split"] = pa.nulls(n, pa.string())
    columns["ingested_at"] = records["at"].cast(TIMESTAMP_TYPE)
    record_table = pa.table(
        {f.name: columns[f.name] for f in BRONZE_RECORDS}, schema=BRONZE_RECORDS
    )
    m = outcomes.num_rows
    outcome_columns: dict[str, Any] = {}
    for spec in BRONZE_OUTCOMES:
        if spec.name == "arrived_at":
            outcome_columns[spec.name] = outcomes["at"].cast(TIMESTAMP_TYPE)
        elif spec.name == "batch_id":
            outcome_columns[spec.name] = pa.array([batch_id] * m, pa.string())
        elif spec.name in _STRING_FIELDS or spec.name == "value":
            outcome_columns[spec.name] = field(outcomes, spec.name).cast(spec.type)
        else:
            outcome_columns[spec.name] = pa.nulls(m, spec.type)
    outcome_table = pa.table(outcome_columns, schema=BRONZE_OUTCOMES)
    return record_table, _first_per_key(outcome_table, "outcome_id"), entries.num_rows


def _first_per_key(table: pa.Table, key: str) -> pa.Table:
    seen: set[str] = set()
    keep: list[int] = []
    for index, value in enumerate(table[key].to_pylist()):
        if value not in seen:
            seen.add(value)
            keep.append(index)
    return table if len(keep) == table.num_rows else table.take(keep)


def committed_batches(warehouse: Warehouse, name: str) -> set[str]:
    """The capture batch ids recorded in the snapshot summaries of table ``name``."""
    if not warehouse.exists(name):
        return set()
    found = set()
    for snapshot in warehouse.table(name).metadata.snapshots:
        summary = snapshot.summary
        batch = summary.additional_properties.get(BATCH_KEY) if summary is not None else None
        if batch:
            found.add(batch)
    return found


def flush_segment(
    warehouse: Warehouse, segment: Path, known_sources: set[str] | None = None
) -> tuple[int, dict[str, int | None]]:
    """Commit one sealed segment to bronze (each table at most once).

    ``known_sources``: sources already registered (by this process), skipped; the ones
    this call registers are added to it (the check reads a table: not once per flush).

    Returns the segment's number of events, and the snapshot id per table written
    (``None``: the batch was committed already, by a run that crashed before the trim).
    """
    known = set() if known_sources is None else known_sources
    batch_id = segment.stem
    records, outcomes, count = segment_tables(segment)
    written: dict[str, int | None] = {}
    for name, rows in ((TableName.BRONZE_RECORDS, records), (TableName.BRONZE_OUTCOMES, outcomes)):
        if not rows.num_rows:
            continue
        if name == TableName.BRONZE_RECORDS:
            for source, workspace in sorted(
                set(zip(rows["source"].to_pylist(), rows["workspace"].to_pylist(), strict=True))
            ):
                if source not in known:
                    register_source(warehouse, source, workspace, "captured by posttrain serve")
                    known.add(source)
        lineage = Lineage(STAGE, properties={BATCH_KEY: batch_id, EVENTS_KEY: str(rows.num_rows)})
        written[name] = warehouse.append_once(name, rows, lineage, BATCH_KEY, batch_id)
    return count, written


class Flusher:
    """A thread that flushes sealed segments and seals the active one when it is old."""

    def __init__(
        self, wal: WriteAheadLog, warehouse: Warehouse, interval_s: float, metrics: Metrics
    ) -> None:
        self.wal = wal
        self.warehouse = warehouse
        self.interval_s = interval_s
        self.metrics = metrics
        self._wake = threading.Event()
        self._stop = False
        self._final_flush = True
        self.last_error: str | None = None
        self.last_snapshots: dict[str, int | None] = {}
        self._sources: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="capture-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, *, flush: bool = True, timeout: float = 120.0) -> None:
        """Stop; with ``flush``, seal and commit everything logged first."""
        self._final_flush = flush
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)

    def flush_now(self) -> int:
        """Commit every sealed segment now (in the calling thread); returns events flushed."""
        flushed = 0
        for segment in self.wal.sealed():
            started = time.monotonic()
            events, written = flush_segment(self.warehouse, segment, self._sources)
            self.wal.trim(segment)
            flushed += events
            self.last_snapshots.update(written)
            self.metrics.inc("flushes_total")
            self.metrics.inc("events_flushed_total", events)
            log.info(
                "capture batch %s: %d events to bronze in %.2fs (snapshots %s)",
                segment.stem,
                events,
                time.monotonic() - started,
                written,
            )
        return flushed

    def _run(self) -> None:
        backoff = 0.5
        tick = min(1.0, self.interval_s / 4)
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            stopping = self._stop
            if stopping and not self._final_flush:
                return
            if stopping or self.wal.active_age_s >= self.interval_s:
                self.wal.rotate()
                if stopping:
                    time.sleep(0.05)  # let the writer seal before the last flush
                    self._wait_sealed()
            try:
                self.flush_now()
                self.last_error = None
                backoff = 0.5
            except Exception as exc:  # the catalog is down, a commit lost: retry later
                self.metrics.inc("flush_failures_total")
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("capture flush failed; the log keeps the events, retrying")
                if stopping:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            if stopping:
                return

    def _wait_sealed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.wal.active_age_s > 0 and time.monotonic() < deadline:
            time.sleep(0.01)


@dataclass(frozen=True)
class CaptureFlush:
    """One micro-batch the service committed to a bronze table."""

    batch_id: str
    snapshot_id: int
    sequence_number: int
    rows: int
    timestamp_ms: int


def capture_flushes(
    warehouse: Warehouse, name: str, *, after_sequence: int = 0
) -> list[CaptureFlush]:
    """The capture flushes of table ``name`` committed after ``after_sequence``, in order."""
    if not warehouse.exists(name):
        return []
    found = []
    for snapshot in warehouse.table(name).metadata.snapshots:
        summary = snapshot.summary
        props = summary.additional_properties if summary is not None else {}
        batch = props.get(BATCH_KEY)
        sequence = snapshot.sequence_number or 0
        if batch and sequence > after_sequence:
            found.append(
                CaptureFlush(
                    batch,
                    snapshot.snapshot_id,
                    sequence,
                    int(props.get(EVENTS_KEY, 0)),
                    snapshot.timestamp_ms,
                )
            )
    return sorted(found, key=lambda flush: flush.sequence_number)
