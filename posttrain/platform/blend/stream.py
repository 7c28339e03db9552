"""Streaming a pinned blend from Iceberg: Arrow batches of blended rows, split into blocks
that ranks and DataLoader workers share out with no overlap and no gap.

The stream is cut into blocks of ``block_rows`` consecutive positions. Block ``j`` belongs to
rank ``j % world_size`` and, within that rank, to worker ``(j // world_size) % num_workers``:
every position has exactly one owner whatever the split, and one rank's blocks, taken in
order, are what a DataLoader whose batch size is ``block_rows`` hands out (it takes one
batch from each worker in turn). Each owner computes the whole schedule (cheap, no data)
and reads only its own rows: a source's reader skips data files and row groups that hold
none of them without decoding them.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from posttrain.platform.blend.schedule import CHUNK, BlendState, Schedule
from posttrain.platform.blend.spec import PinnedBlend, PinnedSource
from posttrain.platform.errors import ConfigError, SnapshotNotFoundError
from posttrain.platform.refs import PinnedSnapshot, ScanPlan
from posttrain.platform.warehouse import Warehouse

SOURCE_COLUMN = "_source"
DEFAULT_BLOCK_ROWS = 1024
# A reader asked for a row further ahead than this re-opens its scan at that row (skipping
# files and row groups unread) instead of decoding its way there.
SEEK_AHEAD_ROWS = 8192
# Read batches a source's background reader decodes ahead of the consumer (bounded: memory
# stays at a few batches whatever the table's size).
READ_AHEAD_BATCHES = 2
# How long stopping a background reader waits for the batch it is decoding.
STOP_SECONDS = 30.0


RowFormat = Literal["python", "numpy"]
"""How rows come out: plain Python values, or numeric lists as NumPy arrays."""


@dataclass(frozen=True)
class Shard:
    """One reader's part of the stream: a data-parallel rank and a DataLoader worker."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.world_size) or not (0 <= self.worker < self.num_workers):
            raise ConfigError(
                f"rank {self.rank} of world size {self.world_size}, worker {self.worker} of "
                f"{self.num_workers}: expected 0 <= rank < world_size and 0 <= worker < "
                "num_workers"
            )

    def owns(self, block: int) -> bool:
        """Whether block ``block`` of the stream is this shard's."""
        return (
            block % self.world_size == self.rank
            and (block // self.world_size) % self.num_workers == self.worker
        )

    def next_block(self, block: int) -> int:
        """The first block at or after ``block`` that this shard owns."""
        while not self.owns(block):
            block += 1
        return block


@dataclass(frozen=True)
class Block:
    """Rows of one owned block: the batch, the offsets before it and each row's source."""

    batch: pa.RecordBatch
    before: np.ndarray
    choices: np.ndarray


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _ReadAhead:
    """The batches of ``batches``, read in a background thread at most ``depth`` ahead.

    pyarrow releases the GIL while it decodes Parquet, so the next batch decodes while the
    consumer builds the current block: without it, decoding stops whenever the consumer
    works. Order and content are those of ``batches`` (one producer, a FIFO). An error in
    the reader is raised in the consumer. :meth:`close` (or dropping this object) stops the
    thread at its next batch and closes ``batches``.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], depth: int = READ_AHEAD_BATCHES) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        # The thread holds the queue and the event, never self: dropping self stops it.
        thread = threading.Thread(
            target=_read_ahead,
            args=(batches, self._queue, self._stop),
            name="blend-read-ahead",
            daemon=True,
        )
        thread.start()
        self._finalizer = weakref.finalize(self, _stop_reading, self._stop, thread)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END or isinstance(item, _Failed):
            self._done = True
            self._finalizer()
            if isinstance(item, _Failed):
                raise item.error
            raise StopIteration
        assert isinstance(item, pa.RecordBatch)
        return item

    def close(self) -> None:
        """Stop the background reader, once it has finished the batch it is decoding."""
        self._done = True
        self._finalizer()


def _stop_reading(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    # Wait for the batch being decoded: a thread still inside pyarrow when the interpreter
    # exits aborts the process ("terminate called without an active exception").
    if thread is not threading.current_thread():
        thread.join(timeout=STOP_SECONDS)


def _read_ahead(
    batches: Iterator[pa.RecordBatch], out: queue.Queue[object], stop: threading.Event
) -> None:
    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for batch in batches:
            if not put(batch):
                return
        put(_END)
    except BaseException as exc:  # handed to the consumer, which raises it
        put(_Failed(exc))
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


class _Reader:
    """Rows of one pinned source by offset, read forward; a cycling source wraps around."""

    def __init__(self, snapshot: PinnedSnapshot, rows: int, columns: list[str] | None) -> None:
        self._plan = ScanPlan(snapshot, tuple(columns) if columns else None)
        self._rows = rows
        self._batches: _ReadAhead | Iterator[pa.RecordBatch] | None = None
        self._pending: pa.RecordBatch | None = None
        self._at = 0  # table row of self._pending's first row (or the next batch's)
        # Set once the reader has jumped ahead (a rank of a large world reads one block in
        # many): reading ahead would then decode batches the jump throws away.
        self._sparse = False

    def take(self, start: int, stop: int) -> list[pa.RecordBatch]:
        """Rows ``start .. stop - 1`` of this source's stream (offset ``o`` is table row
        ``o % rows``, so a cycling source starts over at each multiple of ``rows``)."""
        out: list[pa.RecordBatch] = []
        while start < stop:
            epoch_end = (start // self._rows + 1) * self._rows
            end = min(stop, epoch_end)
            out.extend(self._rows_between(start % self._rows, end - start))
            start = end
        return out

    def _rows_between(self, row: int, count: int) -> Iterator[pa.RecordBatch]:
        if self._batches is None or row < self._at or row - self._at > SEEK_AHEAD_ROWS:
            self._sparse = self._sparse or (self._batches is not None and row > self._at)
            self.close()
            batches = self._plan.batches(skip_rows=row)
            self._batches = batches if self._sparse else _ReadAhead(batches)
            self._pending, self._at = None, row
        while count > 0:
            if self._pending is None or self._pending.num_rows == 0:
                batch = next(self._batches, None)
                if batch is None:
                    raise ConfigError(
                        f"{self._plan.pinned.name}@{self._plan.pinned.snapshot_id} ended at row "
                        f"{self._at}, before row {row}; the pinned row count is {self._rows}"
                    )
                self._pending = batch
            skip = row - self._at
            if skip >= self._pending.num_rows:
                self._at += self._pending.num_rows
                self._pending = None
                continue
            if skip:
                self._pending, self._at = self._pending.slice(skip), row
            piece = self._pending.slice(0, count)
            self._pending = self._pending.slice(piece.num_rows)
            self._at += piece.num_rows
            row += piece.num_rows
            count -= piece.num_rows
            yield piece

    def close(self) -> None:
        """Stop reading ahead (the reader re-opens its scan if asked for more rows)."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        self._batches = None


def open_source(warehouse: Warehouse, source: PinnedSource) -> PinnedSnapshot:
    """The snapshot a pinned source names, opened directly by id (no version lookup).

    Raises:
        SnapshotNotFoundError: the snapshot is gone (expired since the blend was pinned).
    """
    table = warehouse.table(source.table)
    snapshot = table.snapshot_by_id(source.snapshot_id)
    if snapshot is None:
        raise SnapshotNotFoundError(
            source.table,
            str(source.snapshot_id),
            f"blend source {source.ref!r} was pinned to this snapshot, which the table no "
            "longer has (expired?); the blend cannot be replayed",
        )
    return PinnedSnapshot(source.table, table, snapshot, str(source.snapshot_id))


def blend_schema(snapshots: list[PinnedSnapshot], pinned: PinnedBlend) -> pa.Schema:
    """The schema of the blended batches: the sources' columns (the union, when they
    differ: a row lacking a column gets null) and ``_source``, the reference as written.

    Raises:
        ConfigError: two sources have a column of the same name but different types.
    """
    from posttrain.platform.refs import arrow_schema

    columns = tuple(pinned.columns) if pinned.columns else None
    schemas = [arrow_schema(snapshot, columns) for snapshot in snapshots]
    try:
        schema = pa.unify_schemas(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        refs = ", ".join(source.ref for source in pinned.sources)
        raise ConfigError(
            f"blend sources {refs} have columns of the same name but different types: {exc}; "
            "choose the columns to read (columns: [...])"
        ) from None
    return schema.append(pa.field(SOURCE_COLUMN, pa.string(), nullable=False))


def blocks(
    warehouse: Warehouse,
    pinned: PinnedBlend,
    *,
    start: BlendState | None = None,
    shard: Shard | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Iterator[Block]:
    """This shard's blocks of the stream from ``start`` (the beginning by default)."""
    if block_rows < 1:
        raise ConfigError(f"batch_rows must be at least 1, got {block_rows}")
    shard = shard or Shard()
    schedule = Schedule(pinned)
    offsets = schedule.offsets_of(start) if start is not None else schedule.initial()
    snapshots = [open_source(warehouse, source) for source in pinned.sources]
    readers: dict[int, _Reader] = {}
    try:
        yield from _blocks(schedule, offsets, shard, block_rows, pinned, snapshots, readers)
    finally:  # a stream dropped early (training stopped) stops its background readers
        for reader in readers.values():
            reader.close()


def _blocks(
    schedule: Schedule,
    offsets: np.ndarray,
    shard: Shard,
    block_rows: int,
    pinned: PinnedBlend,
    snapshots: list[PinnedSnapshot],
    readers: dict[int, _Reader],
) -> Iterator[Block]:
    schema = blend_schema(snapshots, pinned)
    data_schema = pa.schema([field for field in schema if field.name != SOURCE_COLUMN])
    refs = pa.array([source.ref for source in pinned.sources], pa.string())
    source_columns: dict[tuple[int, int], pa.Array] = {}
    position = int(offsets.sum())
    while True:
        block = position // block_rows
        owned = shard.next_block(block)
        if owned > block:  # skip other shards' positions: schedule only, no data
            target = owned * block_rows
            while position < target:
                step = min(target - position, CHUNK * 16)
                taken = len(schedule.advance(offsets, step))
                position += taken
                if taken < step:
                    return
            continue
        before = offsets.copy()
        wanted = (block + 1) * block_rows - position
        choices = schedule.advance(offsets, wanted)
        if len(choices) == 0:
            return
        pieces: list[pa.RecordBatch] = []
        for index in np.unique(choices).tolist():
            if index not in readers:
                rows = pinned.sources[index].rows
                readers[index] = _Reader(snapshots[index], rows, pinned.columns)
            pieces.extend(readers[index].take(int(before[index]), int(offsets[index])))
        sources = _source_column(refs, choices, source_columns)
        yield Block(_interleave(pieces, choices, sources, data_schema, schema), before, choices)
        position += len(choices)
        if len(choices) < wanted:
            return


def _source_column(
    refs: pa.Array, choices: np.ndarray, one_source: dict[tuple[int, int], pa.Array]
) -> pa.Array:
    """The ``_source`` values of a block. A block from one source (every block of a
    one-source blend) reuses the column made for the first such block: Arrow arrays are
    immutable, so batches can share it."""
    first = int(choices[0])
    if not (choices == first).all():
        return refs.take(pa.array(choices))
    key = (first, len(choices))
    if key not in one_source:
        one_source[key] = refs.take(pa.array(choices))
    return one_source[key]


def _interleave(
    pieces: list[pa.RecordBatch],
    choices: np.ndarray,
    sources: pa.Array,
    data_schema: pa.Schema,
    schema: pa.Schema,
) -> pa.RecordBatch:
    conformed = [_conform(piece, data_schema) for piece in pieces]
    if len(conformed) == 1:  # the block is one slice of one read batch: no copy at all
        [piece] = conformed
        return pa.RecordBatch.from_arrays([*piece.columns, sources], schema=schema)
    order = None
    if len(np.unique(choices)) > 1:
        # Pieces come source by source; position p is the r-th row of its source.
        positions = np.empty(len(choices), dtype=np.int64)
        positions[np.argsort(choices, kind="stable")] = np.arange(len(choices))
        order = pa.array(positions)
    # Column by column: one copy of each (two when sources interleave), no Table round trip.
    columns = []
    for index in range(len(data_schema)):
        column = pa.concat_arrays([piece.column(index) for piece in conformed])
        columns.append(column.take(order) if order is not None else column)
    return pa.RecordBatch.from_arrays([*columns, sources], schema=schema)


def _conform(piece: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    # Types decide, not field metadata or nullability: a read batch of the blend's own
    # columns and types is used as it is (no per-block cast).
    if piece.schema.names == schema.names and all(
        piece.schema.field(index).type == field.type for index, field in enumerate(schema)
    ):
        return piece
    from posttrain.platform.datafiles import conformed_columns

    return pa.RecordBatch.from_arrays(conformed_columns(piece, schema), schema=schema)


def rows_of(batch: pa.RecordBatch, row_format: RowFormat = "python") -> list[dict[str, Any]]:
    """A batch's rows as dicts: Python values, or (``numpy``) with every list column of
    numbers without nulls as read-only NumPy views of the batch's memory (no copy, a
    fraction of the cost of Python lists of token ids)."""
    if row_format == "python":
        plain: list[dict[str, Any]] = batch.to_pylist()
        return plain
    values: list[list[Any]] = []
    for column in batch.columns:
        kind = column.type
        if (
            (pa.types.is_list(kind) or pa.types.is_large_list(kind))
            and (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type))
            and column.null_count == 0
        ):
            import pyarrow.compute as pc

            flat = column.flatten()
            if flat.null_count == 0:
                lengths = pc.list_value_length(column).to_numpy()
                values.append(np.split(flat.to_numpy(), np.cumsum(lengths)[:-1]))
                continue
        values.append(column.to_pylist())
    names = batch.schema.names
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def iter_blend_batches(
    warehouse: Warehouse,
    pinned: PinnedBlend,
    *,
    start: BlendState | None = None,
    rank: int = 0,
    world_size: int = 1,
    batch_rows: int = DEFAULT_BLOCK_ROWS,
) -> Iterator[pa.RecordBatch]:
    """The blend as Arrow record batches of at most ``batch_rows`` rows (this rank's
    blocks), each with a ``_source`` column naming the reference a row came from."""
    shard = Shard(rank, world_size)
    for block in blocks(warehouse, pinned, start=start, shard=shard, block_rows=batch_rows):
        yield block.batch


def iter_blend(
    warehouse: Warehouse, pinned: PinnedBlend, *, start: BlendState | None = None
) -> Iterator[dict[str, Any]]:
    """Every row of the blend in stream order, as a dict with ``_source`` (the reference as
    written), from ``start`` (the beginning by default)."""
    for batch in iter_blend_batches(warehouse, pinned, start=start):
        yield from batch.to_pylist()
