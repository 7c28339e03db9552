"""The Iceberg warehouse: open the catalog, create posttrain tables, read and write them.

The embedded default is pyiceberg's ``SqlCatalog`` on SQLite with a local warehouse
folder; a Postgres URI, a REST or Glue catalog and an S3 warehouse are configuration, not
code (see :class:`WarehouseSettings`).

Example:
    >>> wh = Warehouse(WarehouseSettings.local("/tmp/posttrain-doc"))  # doctest: +SKIP
    >>> wh.append("bronze.records", batch, Lineage("ingest"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import enum
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, In, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table, TableProperties
from pyiceberg.utils.properties import property_as_int
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from posttrain.platform.errors import (
    CatalogError,
    CommitConflictError,
    ConfigError,
    TableNotFoundError,
)
from posttrain.platform.lineage import Lineage
from posttrain.platform.listing import TableInfo as TableInfo  # re-exported
from posttrain.platform.schemas import TABLES, TableSpec
from posttrain.platform.settings import WarehouseSettings as WarehouseSettings  # re-exported
from posttrain.platform.settings import redact_uri

ALL_ROWS: BooleanExpression = AlwaysTrue()

DEFAULT_TABLE_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
    # Parquet cannot start reading inside a row group: a page at a deep offset decodes
    # every row before it in its group. 8,192 rows keep that to a few MB for conversation
    # rows (the viewer's page times stay flat in table size; pyiceberg's default, 1,048,576,
    # made a deep page decode up to a million rows) at a small cost to full scans.
    "write.parquet.row-group-limit": "8192",
}

# What a run read: table name → snapshot id (``None``: the table had no snapshot yet).
Snapshots = Mapping[str, int | None]
T = TypeVar("T")


class _Unchecked(enum.Enum):
    ANY = "any"


# ``expected_snapshot`` default: commit on top of whatever snapshot is current.
ANY_SNAPSHOT: Literal[_Unchecked.ANY] = _Unchecked.ANY
Expected = int | None | Literal[_Unchecked.ANY]


@dataclass(frozen=True)
class CommitRetry:
    """How often and how patiently a write retries when another writer commits first.

    Waits grow exponentially from ``base_s`` up to ``max_s``, each with full jitter so that
    writers that collided once do not collide again in lockstep.
    """

    attempts: int = 12
    base_s: float = 0.05
    max_s: float = 2.0

    def wait(self, attempt: int) -> float:
        """Seconds to sleep before retry number ``attempt`` (0-based)."""
        return random.uniform(0, min(self.max_s, self.base_s * 2**attempt))


@dataclass(frozen=True)
class AppendResult:
    """What :meth:`Warehouse.append_new` committed."""

    snapshot_id: int | None
    rows_added: int
    rows_already_present: int


def _lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` means another writer got there first (safe to retry from scratch)."""
    if isinstance(exc, CommitFailedException):
        return True
    # The embedded SQLite catalog answers a concurrent writer with a lock timeout.
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


def _open_catalog(settings: WarehouseSettings, attempts: int = 5) -> Catalog:
    """``load_catalog``, retried when another process is creating the catalog's own tables.

    pyiceberg's SQL catalog creates its bookkeeping tables on first open with a
    check-then-create; two processes opening a fresh catalog at once (eight first ingests
    into a new home) can both see "absent", and the loser fails with "already exists".
    Opening again finds the winner's tables.
    """
    for attempt in range(attempts):
        try:
            return load_catalog(settings.catalog_name, **settings.catalog_properties())
        except (OperationalError, IntegrityError, ProgrammingError) as exc:
            lost = "already exists" in str(exc) or "locked" in str(exc).lower()
            if not lost or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")  # pragma: no cover


def _owning_retries(table: Table) -> Table:
    """``table`` with pyiceberg's own commit retries off, for this process only.

    pyiceberg retries a failed commit by rebasing the new snapshot on whatever was committed
    meanwhile; that would defeat the compare-and-swap that :meth:`Warehouse.append_new` and
    pinned writes rely on, so the warehouse's commit loop owns the retries instead. Nothing
    is committed to the table's properties.
    """
    properties = table.metadata.properties
    if properties.get(TableProperties.COMMIT_NUM_RETRIES) != "0":
        table.metadata = table.metadata.model_copy(
            update={"properties": {**properties, TableProperties.COMMIT_NUM_RETRIES: "0"}}
        )
    return table


def _in_row_groups(table: Table, data: pa.Table) -> pa.Table:
    """``data`` as record batches of exactly the table's row-group rows (the last shorter).

    pyiceberg cuts data files only between record batches and starts each file's row
    groups at its first row: with whole row groups per batch, every file of one write holds
    whole row groups, so the files' rows line up on multiples of the row-group size across
    the table. Readers that stream the table in blocks that divide it (the blend loader)
    then never get a block that straddles two files, which would cost a copy of each.
    Only slices that span two chunks of ``data`` are copied, and only when the write makes
    more than one file.
    """
    properties = table.metadata.properties
    rows = property_as_int(
        properties,
        TableProperties.PARQUET_ROW_GROUP_LIMIT,
        TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT,
    )
    file_bytes = property_as_int(
        properties,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
    )
    # Data that fits one file (pyiceberg sizes files by Arrow bytes) has nothing to line up.
    if not rows or rows <= 0 or data.num_rows <= rows or data.nbytes <= (file_bytes or 0):
        return data
    batches = [
        batch
        for start in range(0, data.num_rows, rows)
        for batch in data.slice(start, rows).combine_chunks().to_batches()
    ]
    return pa.Table.from_batches(batches, schema=data.schema)


def _current_id(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def _evolved(table: Table, schema: pa.Schema) -> Table:
    """``table`` with the optional columns ``schema`` adds, and the columns it made optional
    relaxed, so that a warehouse written by an older posttrain keeps accepting writes."""
    current = {field.name: field for field in table.schema().as_arrow()}
    if all(
        field.name in current and (current[field.name].nullable or not field.nullable)
        for field in schema
    ):
        return table
    with table.update_schema() as update:
        update.union_by_name(schema)
    return table


def _partitioned(table: Table, columns: tuple[str, ...]) -> Table:
    """``table`` with an identity partition on each of ``columns`` (added when missing)."""
    schema = table.schema()
    have = {schema.find_column_name(f.source_id) for f in table.spec().fields}
    missing = [column for column in columns if column not in have]
    if missing:
        with table.update_spec() as update:
            for column in missing:
                update.add_identity(column)
    return table


def _table_info(name: str, table: Table, snapshot_id: int | None = None) -> TableInfo:
    snapshot = (
        table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
    )
    summary = snapshot.summary if snapshot and snapshot.summary else None
    return TableInfo(
        name=name,
        rows=int(summary.get("total-records") or 0) if summary else 0,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        size_bytes=int(summary.get("total-files-size") or 0) if summary else 0,
        updated_at=(
            datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC) if snapshot else None
        ),
    )


class Warehouse:
    """Typed access to the posttrain tables in one Iceberg catalog."""

    def __init__(self, settings: WarehouseSettings, *, retry: CommitRetry | None = None) -> None:
        self.settings = settings
        self.retry = retry or CommitRetry()
        self._prepare_local_paths()
        try:
            self.catalog: Catalog = _open_catalog(settings)
        except Exception as exc:  # pyiceberg raises many types; the user needs one message
            where = settings.catalog_uri or settings.warehouse
            # The message reaches terminals and Dagster's event log: never a password.
            password = urlsplit(where).password
            problem = str(exc).replace(password, "***") if password else str(exc)
            raise CatalogError(
                f"cannot open the {settings.catalog_type} catalog at {redact_uri(where)}: {problem}"
            ) from None

    def _prepare_local_paths(self) -> None:
        uri = self.settings.catalog_uri or ""
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if self.settings.warehouse.startswith("file://"):
            Path(self.settings.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)

    # -- tables -----------------------------------------------------------------------

    def table_names(self) -> list[str]:
        """Every table in the catalog as ``namespace.name``, sorted."""
        names = []
        for namespace in self.catalog.list_namespaces():
            for identifier in self.catalog.list_tables(namespace):
                names.append(".".join(identifier))
        return sorted(names)

    def exists(self, name: str) -> bool:
        return name.count(".") == 1 and self.catalog.table_exists(name)

    def table(self, name: str) -> Table:
        """Load a table, or raise :class:`TableNotFoundError` listing the tables there are."""
        if name.count(".") != 1:
            raise TableNotFoundError(name, self.table_names())
        try:
            return self.catalog.load_table(name)
        except (NoSuchTableError, NoSuchNamespaceError):
            raise TableNotFoundError(name, self.table_names()) from None

    def ensure_table(self, spec: TableSpec | str) -> Table:
        """Create the table (and its namespace) if missing; return it."""
        if isinstance(spec, str):
            if spec not in TABLES:
                raise ConfigError(f"{spec!r} is not a posttrain table; known: {sorted(TABLES)}")
            spec = TABLES[spec]
        # Loading first: creating writes a metadata file before it finds the table exists.
        with contextlib.suppress(NoSuchTableError, NoSuchNamespaceError):
            return _evolved(self.catalog.load_table(spec.name), spec.schema)
        # IntegrityError: another process created the namespace between the SQL catalog's
        # existence check and its insert.
        with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
            self.catalog.create_namespace(spec.namespace)
        table = self.catalog.create_table_if_not_exists(
            spec.name,
            schema=spec.schema,
            properties={**DEFAULT_TABLE_PROPERTIES, **spec.properties},
        )
        return _partitioned(_evolved(table, spec.schema), spec.partition_by)

    def snapshot_id(self, name: str) -> int | None:
        """Current snapshot id of ``name``; ``None`` when it is missing or empty."""
        if not self.exists(name):
            return None
        snapshot = self.table(name).current_snapshot()
        return snapshot.snapshot_id if snapshot else None

    def info(self, name: str, snapshot_id: int | None = None) -> TableInfo:
        """Rows, snapshot id, size and last update of ``name`` at ``snapshot_id`` (default:
        its current snapshot)."""
        return _table_info(name, self.table(name), snapshot_id)

    def pin(self, *names: str) -> dict[str, int | None]:
        """The current snapshot id of each table, for a run to read and cite consistently."""
        return {name: self.snapshot_id(name) for name in names}

    # -- reading ----------------------------------------------------------------------

    def column(self, name: str, column: str, *, at: Snapshots | None = None) -> pa.Array:
        """One column of ``name`` as a single array (empty when the table does not exist).

        ``at`` pins the snapshot read: ``at[name]`` (``None``: the table was empty then);
        without it the current snapshot is read. Strings come back as ``large_string``
        whether or not the table has data files (an empty table scans as ``string``), so
        columns of several tables concatenate.
        """
        pinned = at[name] if at is not None else self.snapshot_id(name)
        if pinned is None or not self.exists(name):
            return pa.array([], type=pa.large_string())
        values = self.read(name, columns=(column,), snapshot_id=pinned).column(column)
        values = values.combine_chunks()
        return values.cast(pa.large_string()) if pa.types.is_string(values.type) else values

    def read(
        self,
        name: str,
        *,
        columns: tuple[str, ...] | None = None,
        row_filter: str | BooleanExpression = ALL_ROWS,
        snapshot_id: int | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Scan a table into Arrow. ``row_filter`` uses pyiceberg's expression syntax."""
        scan = self.table(name).scan(
            row_filter=row_filter,
            selected_fields=columns or ("*",),
            snapshot_id=snapshot_id,
            limit=limit,
        )
        return scan.to_arrow()

    def read_batches(
        self,
        name: str,
        *,
        columns: tuple[str, ...] | None = None,
        row_filter: str | BooleanExpression = ALL_ROWS,
        snapshot_id: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table as record batches without materializing it."""
        scan = self.table(name).scan(
            row_filter=row_filter, selected_fields=columns or ("*",), snapshot_id=snapshot_id
        )
        yield from scan.to_arrow_batch_reader()

    # -- writing ----------------------------------------------------------------------

    def _conform(self, name: str, data: pa.Table) -> pa.Table:
        schema = TABLES[name].schema if name in TABLES else self.table(name).schema().as_arrow()
        missing = [column for column in schema.names if column not in data.column_names]
        if missing:
            raise CatalogError(f"cannot write {name}: the data lacks columns {missing}")
        try:
            return data.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise CatalogError(
                f"cannot write {name}: data does not match its schema: {exc}"
            ) from exc

    def _writable(self, name: str) -> Table:
        return _owning_retries(self.ensure_table(name) if name in TABLES else self.table(name))

    def _commit(self, name: str, attempt: Callable[[Table], T], expected: Expected) -> T:
        """Run ``attempt`` on a freshly loaded table until one commit lands.

        Each attempt starts from the catalog's current metadata, and pyiceberg's commit is a
        compare-and-swap on the snapshot the attempt started from: if another writer
        committed in between, the attempt fails and is retried (after a jittered backoff),
        never merged blindly. With ``expected`` set, a table that moved past that snapshot
        is a conflict at once: the caller's data was computed from it.
        """
        cause = "the catalog stayed busy"
        for number in range(self.retry.attempts):
            try:
                table = self._writable(name)
                if expected is not ANY_SNAPSHOT and _current_id(table) != expected:
                    raise CommitConflictError(
                        name,
                        f"another writer committed snapshot {_current_id(table)} after this "
                        f"run read snapshot {expected}",
                    )
                return attempt(table)
            except (CommitFailedException, OperationalError) as exc:
                if not _lost_race(exc):
                    raise
                cause = str(exc).splitlines()[0]
            if number + 1 < self.retry.attempts:
                time.sleep(self.retry.wait(number))
        raise CommitConflictError(
            name, f"{self.retry.attempts} attempts lost the race to other writers ({cause})"
        )

    def append(
        self,
        name: str,
        data: pa.Table,
        lineage: Lineage,
        *,
        expected_snapshot: Expected = ANY_SNAPSHOT,
    ) -> int | None:
        """Append rows, stamping the snapshot with ``lineage``; returns the new snapshot id.

        No rows, no commit: the current snapshot id is returned. ``expected_snapshot``
        makes the append fail with :class:`CommitConflictError` when the table is no longer
        at that snapshot (the rows were computed from it).

        Raises:
            CommitConflictError: other writers kept winning, or the table moved on.
        """
        conformed = self._conform(name, data)

        def attempt(table: Table) -> int | None:
            if conformed.num_rows:
                table.append(
                    _in_row_groups(table, conformed), snapshot_properties=lineage.summary()
                )
            return _current_id(table)  # the commit refreshed ``table``

        return self._commit(name, attempt, expected_snapshot)

    def append_new(
        self,
        name: str,
        data: pa.Table,
        key: str,
        lineage: Lineage,
        *,
        scope: BooleanExpression = ALL_ROWS,
    ) -> AppendResult:
        """Append the rows of ``data`` whose ``key`` is not in the table yet, exactly once.

        Each attempt reads the keys of the snapshot it will commit on top of and commits
        with compare-and-swap, so two writers racing with the same rows add them once.
        ``scope`` narrows the keys read to rows that can collide (e.g. one source).

        Raises:
            CommitConflictError: other writers kept winning; nothing was written.
        """
        conformed = self._conform(name, data)

        def attempt(table: Table) -> AppendResult:
            present = table.scan(row_filter=scope, selected_fields=(key,)).to_arrow()[key]
            fresh = conformed
            if len(present) and conformed.num_rows:
                fresh = conformed.filter(
                    pc.invert(pc.is_in(conformed[key], value_set=present.combine_chunks()))
                )
            if fresh.num_rows:
                table.append(_in_row_groups(table, fresh), snapshot_properties=lineage.summary())
            return AppendResult(
                _current_id(table), fresh.num_rows, conformed.num_rows - fresh.num_rows
            )

        return self._commit(name, attempt, ANY_SNAPSHOT)

    def append_once(
        self, name: str, data: pa.Table, lineage: Lineage, batch_key: str, batch_id: str
    ) -> int | None:
        """Append ``data`` unless a snapshot of ``name`` already records ``batch_key`` =
        ``batch_id`` in its summary (a replayed batch); ``lineage`` must carry that property.

        Checked on the metadata each attempt commits on, so a commit that landed before a
        crash (or a retry after an ambiguous failure) is never appended twice. Returns the
        new snapshot id, or ``None`` when the batch was there already.
        """
        if lineage.properties.get(batch_key) != batch_id:
            raise ValueError(f"lineage must carry {batch_key}={batch_id}")
        conformed = self._conform(name, data)

        def attempt(table: Table) -> int | None:
            for snapshot in table.metadata.snapshots:
                summary = snapshot.summary
                if summary is not None and summary.additional_properties.get(batch_key) == batch_id:
                    return None
            if conformed.num_rows:
                table.append(
                    _in_row_groups(table, conformed), snapshot_properties=lineage.summary()
                )
            return _current_id(table)

        return self._commit(name, attempt, ANY_SNAPSHOT)

    def overwrite(
        self,
        name: str,
        data: pa.Table,
        lineage: Lineage,
        *,
        expected_snapshot: Expected = ANY_SNAPSHOT,
        where: BooleanExpression = ALL_ROWS,
    ) -> int | None:
        """Replace the rows matching ``where`` (all rows by default) with ``data`` in one
        commit, stamping the snapshot with ``lineage``; returns the new snapshot id.

        Raises:
            CommitConflictError: other writers kept winning, or the table moved on from
                ``expected_snapshot``.
        """
        conformed = self._conform(name, data)

        def attempt(table: Table) -> int | None:
            if _table_info(name, table).rows == 0:
                # Overwriting an empty table would only add a no-op delete snapshot (and a
                # warning); with no rows either, there is nothing to commit at all.
                if conformed.num_rows:
                    table.append(
                        _in_row_groups(table, conformed), snapshot_properties=lineage.summary()
                    )
            else:
                with warnings.catch_warnings():
                    # A filter matching no row yet (a new partition) is an append, not a fault.
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    table.overwrite(
                        _in_row_groups(table, conformed),
                        overwrite_filter=where,
                        snapshot_properties=lineage.summary(),
                    )
            return _current_id(table)

        return self._commit(name, attempt, expected_snapshot)

    def replace_keys(
        self,
        name: str,
        key: str,
        keys: pa.Array,
        rows: pa.Table,
        lineage: Lineage,
        *,
        expected_snapshot: Expected,
    ) -> int | None:
        """Delete every row whose ``key`` is in ``keys`` and append ``rows``, in one commit.

        For repairs (``posttrain doctor --repair``): readers see the table before or after,
        never half of it, and the commit fails with :class:`CommitConflictError` if the
        table moved past ``expected_snapshot`` (the repair was planned on that snapshot).
        """
        conformed = self._conform(name, rows)
        doomed = In(term=Reference(key), values={literal(value) for value in keys.to_pylist()})

        def attempt(table: Table) -> int | None:
            if conformed.num_rows:
                table.overwrite(
                    _in_row_groups(table, conformed),
                    overwrite_filter=doomed,
                    snapshot_properties=lineage.summary(),
                )
            else:
                table.delete(doomed, snapshot_properties=lineage.summary())
            return _current_id(table)

        return self._commit(name, attempt, expected_snapshot)

    def snapshot_summary(self, name: str, snapshot_id: int | None = None) -> dict[str, Any]:
        """The summary properties of a snapshot (the current one by default)."""
        table = self.table(name)
        snapshot = (
            table.snapshot_by_id(snapshot_id)
            if snapshot_id is not None
            else table.current_snapshot()
        )
        if snapshot is None or snapshot.summary is None:
            return {}
        return dict(snapshot.summary.additional_properties) | {
            "operation": snapshot.summary.operation.value
        }
