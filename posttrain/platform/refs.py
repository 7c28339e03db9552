"""Table references (``gold.sft``, ``gold.sft@<snapshot id>``, ``gold.sft@<tag>``) and
streaming reads of the snapshot they pin.

Everything that hands a table to a trainer (``posttrain export``, the Python loader) names
it through :class:`TableRef` and resolves it with :func:`resolve`, the one place that turns
the part after ``@`` into a snapshot. Today that is a snapshot id or an Iceberg tag or
branch name; corpus versions (``sft@v3``) are tags on each table of the corpus, so they
resolve here too once they exist.

Example:
    >>> TableRef.parse("gold.sft@4242")
    TableRef(table='gold.sft', ref='4242')
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.table import DataScan, Table
from pyiceberg.table.snapshots import Snapshot

from posttrain.platform.errors import ConfigError, SnapshotNotFoundError
from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    import pyarrow.parquet as pq


@dataclass(frozen=True)
class TableRef:
    """A table name and, optionally, what to pin it to (snapshot id, tag or branch)."""

    table: str
    ref: str | None = None

    @classmethod
    def parse(cls, text: str) -> TableRef:
        """Split ``TABLE[@REF]``.

        Raises:
            ConfigError: ``@`` with nothing after it, or no table name before it.
        """
        name, at, ref = text.strip().partition("@")
        if not name.strip() or (at and not ref.strip()):
            raise ConfigError(
                f"{text!r} is not a table reference; expected TABLE, TABLE@SNAPSHOT_ID or "
                "TABLE@TAG, e.g. gold.sft@4242"
            )
        return cls(name.strip(), ref.strip() or None)

    def __str__(self) -> str:
        return self.table if self.ref is None else f"{self.table}@{self.ref}"


@dataclass(frozen=True)
class PinnedSnapshot:
    """A table and the one snapshot a reference resolved to."""

    name: str
    table: Table
    snapshot: Snapshot
    ref: str | None

    @property
    def snapshot_id(self) -> int:
        return self.snapshot.snapshot_id

    @property
    def rows(self) -> int | None:
        """Row count from the snapshot summary (``None`` when the writer did not record it)."""
        summary = self.snapshot.summary
        total = summary.get("total-records") if summary is not None else None
        return int(total) if total is not None else None

    def lineage(self) -> dict[str, str]:
        """The ``posttrain.*`` summary properties: input snapshot ids, config hash, code."""
        summary = self.snapshot.summary
        if summary is None:
            return {}
        return {
            key: value
            for key, value in sorted(summary.additional_properties.items())
            if key.startswith("posttrain.")
        }


def resolve_snapshot(table: Table, name: str, ref: str | None) -> Snapshot:
    """The snapshot ``ref`` names in ``table``: the current one when ``ref`` is ``None``,
    else a snapshot id, else a tag or branch (pyiceberg's refs).

    Raises:
        SnapshotNotFoundError: the table has no snapshot yet, or nothing is called ``ref``.
    """
    if ref is None:
        current = table.current_snapshot()
        if current is None:
            raise SnapshotNotFoundError(name, None, "the table has no snapshot yet (never written)")
        return current
    snapshot = table.snapshot_by_id(int(ref)) if ref.isdigit() else None
    snapshot = snapshot or table.snapshot_by_name(ref)
    if snapshot is None:
        refs = sorted(table.metadata.refs)
        recent = [str(s.snapshot_id) for s in table.snapshots()[-3:]]
        raise SnapshotNotFoundError(
            name,
            ref,
            f"no snapshot id, tag or branch by that name; refs: {', '.join(refs) or 'none'}; "
            f"latest snapshot ids: {', '.join(recent) or 'none'}",
        )
    return snapshot


def resolve(warehouse: Warehouse, ref: TableRef | str) -> PinnedSnapshot:
    """Open the table a reference names and pin the snapshot it resolves to.

    REF is resolved as everywhere else (:func:`posttrain.platform.versions.resolve`): a
    corpus version (``gold.sft@v3``), a snapshot id, then a tag or branch.

    Raises:
        TableNotFoundError: no such table (the message lists the tables there are).
        SnapshotNotFoundError: REF names nothing of that table, or an empty one.
    """
    from posttrain.platform.errors import RefNotFoundError
    from posttrain.platform.versions import resolve as resolve_version

    parsed = TableRef.parse(ref) if isinstance(ref, str) else ref
    table = warehouse.table(parsed.table)
    if parsed.ref is None:
        snapshot = resolve_snapshot(table, parsed.table, None)
    else:
        try:
            _, snapshot_id = resolve_version(warehouse, str(parsed))
        except RefNotFoundError:
            # Not a version either: say which ids, tags and branches there are.
            return PinnedSnapshot(
                parsed.table, table, resolve_snapshot(table, parsed.table, parsed.ref), parsed.ref
            )
        found = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
        if found is None:
            raise SnapshotNotFoundError(parsed.table, parsed.ref, "it names an empty table")
        snapshot = found
    return PinnedSnapshot(parsed.table, table, snapshot, parsed.ref)


def arrow_schema(pinned: PinnedSnapshot, columns: tuple[str, ...] | None = None) -> pa.Schema:
    """The Arrow schema of the pinned snapshot's rows (projected to ``columns``), without
    Iceberg's field-id metadata and with the 32-bit-offset types the tables are declared
    with in :mod:`~posttrain.platform.schemas` (pyiceberg reads ``large_*`` types)."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    schema = schema_to_pyarrow(_scan(pinned, columns).projection(), include_field_ids=False)
    return pa.schema([_small_field(field) for field in schema], metadata=schema.metadata)


def _small_field(field: pa.Field) -> pa.Field:
    return field.with_type(_small_type(field.type))


def _small_type(type_: pa.DataType) -> pa.DataType:
    # Batches stay far below 2 GiB (see BATCH_BYTES), so 32-bit offsets always suffice.
    if pa.types.is_large_string(type_):
        return pa.string()
    if pa.types.is_large_binary(type_):
        return pa.binary()
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        return pa.list_(_small_field(type_.value_field))
    if pa.types.is_struct(type_):
        return pa.struct([_small_field(type_.field(i)) for i in range(type_.num_fields)])
    if pa.types.is_map(type_):
        return pa.map_(_small_field(type_.key_field), _small_field(type_.item_field))
    return type_


def _scan(pinned: PinnedSnapshot, columns: tuple[str, ...] | None) -> DataScan:
    if columns:
        # A pinned scan reads with the snapshot's own schema, not the table's current one.
        schema_id = pinned.snapshot.schema_id
        schema = pinned.table.schemas().get(schema_id) if schema_id is not None else None
        names = (schema or pinned.table.schema()).column_names
        unknown = [column for column in columns if column not in names]
        if unknown:
            raise ConfigError(
                f"{pinned.name} has no column(s) {', '.join(unknown)}; columns: {', '.join(names)}"
            )
    return pinned.table.scan(
        selected_fields=columns or ("*",), snapshot_id=pinned.snapshot.snapshot_id
    )


def data_files(pinned: PinnedSnapshot) -> list[str]:
    """Paths of the pinned snapshot's data files, in table order."""
    return [task.file.file_path for task in _scan(pinned, None).plan_files()]


def stream_batches(
    pinned: PinnedSnapshot,
    columns: tuple[str, ...] | None = None,
    files: Collection[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The pinned snapshot's rows in table order (data files in manifest order, rows in file
    order), one Arrow record batch at a time, typed as :func:`arrow_schema` says.

    Memory stays at about one batch of ``BATCH_BYTES`` whatever the table's size.
    pyiceberg 0.12's ``to_arrow_batch_reader`` reads every data file whole, all files at
    once in its thread pool, so it is not used. A plain data file (Parquet, no delete files,
    a table whose schema never changed and is unpartitioned) is read with pyarrow's
    ``ParquetFile.iter_batches``; any other file goes through pyiceberg's own per-file
    reader (schema evolution, name mapping and delete files), lazily, one file at a time.
    ``files`` restricts the read to those data files (see :func:`data_files`), e.g. one
    shard per DataLoader worker.
    """
    return ScanPlan(pinned, columns).batches(files)


class ScanPlan:
    """A pinned snapshot's scan planned once (its data files and how to read each), to be
    read from the start or from any row, as often as needed (see :func:`stream_batches`)."""

    def __init__(self, pinned: PinnedSnapshot, columns: tuple[str, ...] | None = None) -> None:
        from pyiceberg.io.pyarrow import ArrowScan

        self.pinned = pinned
        self._scan = _scan(pinned, columns)
        self.schema = arrow_schema(pinned, columns)
        self._reader = ArrowScan(
            pinned.table.metadata,
            pinned.table.io,
            self._scan.projection(),
            self._scan.row_filter,
            self._scan.case_sensitive,
        )
        self._tasks = list(self._scan.plan_files())
        self._plain = _plain_table(pinned.table)

    def batches(
        self, files: Collection[str] | None = None, skip_rows: int = 0
    ) -> Iterator[pa.RecordBatch]:
        """Rows in table order from row ``skip_rows`` on. Whole data files and row groups
        before that row are not read when their row counts are exact (no delete files)."""
        from pyiceberg.io.pyarrow import _read_all_delete_files
        from pyiceberg.manifest import FileFormat

        io = self.pinned.table.io
        per_file = getattr(self._reader, "_record_batches_from_scan_tasks_and_deletes", None)
        wanted = None if files is None else set(files)
        skip = skip_rows
        for task in self._tasks:
            if wanted is not None and task.file.file_path not in wanted:
                continue
            if skip and not task.delete_files and task.file.record_count <= skip:
                skip -= task.file.record_count
                continue
            batches: Iterable[pa.RecordBatch]
            parquet = task.file.file_format == FileFormat.PARQUET
            if self._plain and not task.delete_files and parquet:
                batches = _parquet_batches(
                    self.pinned.table, task.file.file_path, self.schema.names, skip
                )
                skip = 0
            elif per_file is not None:
                batches = per_file([task], _read_all_delete_files(io, [task]))
            else:  # another pyiceberg: its public reader is correct, if less frugal
                batches = self._reader.to_record_batches([task])
            for batch in batches:
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                if skip:
                    batch, skip = batch.slice(skip), 0
                yield batch.cast(self.schema)


# Rows per batch: a row group (the writer's unit) at most, and fewer when its rows are wide,
# so a batch holds about this many bytes once decoded (Parquet's encoded sizes are all the
# footer gives; decoded Arrow runs a few times larger, hence the factor).
BATCH_BYTES = 64 << 20
DECODED_PER_ENCODED_BYTE = 4
MAX_BATCH_ROWS = 65_536
# Decoded bytes of the row groups one Parquet reader is opened for (see _row_group_windows).
READ_WINDOW_BYTES = 64 << 20


def _plain_table(table: Table) -> bool:
    """Every data file's columns are the schema's columns by name: one schema ever, no
    name mapping for imported files, no partition values kept outside the files."""
    from pyiceberg.table import TableProperties

    metadata = table.metadata
    return (
        len(metadata.schemas) == 1
        and TableProperties.DEFAULT_NAME_MAPPING not in metadata.properties
        and all(spec.is_unpartitioned() for spec in metadata.partition_specs)
    )


def _parquet_batches(
    table: Table, path: str, names: list[str], skip_rows: int = 0
) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    with table.io.new_input(path).open() as source:
        parquet = pq.ParquetFile(source)
        metadata = parquet.metadata
        if metadata.num_row_groups == 0:
            return
        first = metadata.row_group(0)
        encoded_row = max(1, first.total_byte_size // max(first.num_rows, 1))
        batch_rows = max(
            1,
            min(
                MAX_BATCH_ROWS,
                first.num_rows,
                BATCH_BYTES // (DECODED_PER_ENCODED_BYTE * encoded_row),
            ),
        )
        # Row groups wholly before ``skip_rows`` are not decoded; the first one read is cut.
        groups = list(range(metadata.num_row_groups))
        while groups and skip_rows >= metadata.row_group(groups[0]).num_rows:
            skip_rows -= metadata.row_group(groups.pop(0)).num_rows
        for window in _row_group_windows(metadata, groups):
            for batch in parquet.iter_batches(
                batch_size=batch_rows, row_groups=window, columns=names
            ):
                if skip_rows >= batch.num_rows:
                    skip_rows -= batch.num_rows
                    continue
                if skip_rows:
                    batch, skip_rows = batch.slice(skip_rows), 0
                yield batch.select(names)


def _row_group_windows(metadata: pq.FileMetaData, groups: list[int]) -> Iterator[list[int]]:
    """``groups`` cut into runs of about :data:`READ_WINDOW_BYTES` (decoded size), each
    read by a reader of its own.

    A pyarrow reader keeps what it has read of a file until it is dropped: over a whole
    file its memory grows with the file (measured: 120 MB still held after the 64,512 rows
    of a 110 MB file, against 20 MB in windows of eight 8 MB row groups, at the same speed).
    """
    from posttrain.platform.datafiles import row_group_runs

    return row_group_runs(metadata, groups, READ_WINDOW_BYTES, _decoded_bytes)


def _decoded_bytes(group: pq.RowGroupMetaData) -> int:
    return int(group.total_byte_size)
