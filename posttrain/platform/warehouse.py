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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table

from posttrain.platform.errors import CatalogError, ConfigError, TableNotFoundError
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableSpec
from posttrain.platform.settings import WarehouseSettings as WarehouseSettings  # re-exported
from posttrain.platform.settings import redact_uri

ALL_ROWS: BooleanExpression = AlwaysTrue()

DEFAULT_TABLE_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
}


@dataclass(frozen=True)
class TableInfo:
    """What ``posttrain tables`` prints for one table."""

    name: str
    rows: int
    snapshot_id: int | None
    size_bytes: int
    updated_at: datetime | None


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


def _table_info(name: str, table: Table) -> TableInfo:
    snapshot = table.current_snapshot()
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

    def __init__(self, settings: WarehouseSettings) -> None:
        self.settings = settings
        self._prepare_local_paths()
        try:
            self.catalog: Catalog = load_catalog(
                settings.catalog_name, **settings.catalog_properties()
            )
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
        with contextlib.suppress(NamespaceAlreadyExistsError):
            self.catalog.create_namespace(spec.namespace)
        table = self.catalog.create_table_if_not_exists(
            spec.name,
            schema=spec.schema,
            properties={**DEFAULT_TABLE_PROPERTIES, **spec.properties},
        )
        return _evolved(table, spec.schema)

    def snapshot_id(self, name: str) -> int | None:
        """Current snapshot id of ``name``; ``None`` when it is missing or empty."""
        if not self.exists(name):
            return None
        snapshot = self.table(name).current_snapshot()
        return snapshot.snapshot_id if snapshot else None

    def info(self, name: str) -> TableInfo:
        """Rows, snapshot id, size and last update of ``name``, from its current snapshot."""
        return _table_info(name, self.table(name))

    # -- reading ----------------------------------------------------------------------

    def column(self, name: str, column: str) -> pa.Array:
        """One column of ``name`` as a single array (empty when the table does not exist).

        Strings come back as ``large_string`` whether or not the table has data files (an
        empty table scans as ``string``), so columns of several tables concatenate.
        """
        if not self.exists(name):
            return pa.array([], type=pa.large_string())
        values = self.read(name, columns=(column,)).column(column).combine_chunks()
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
        return self.ensure_table(name) if name in TABLES else self.table(name)

    def append(self, name: str, data: pa.Table, lineage: Lineage) -> int | None:
        """Append rows, stamping the snapshot with ``lineage``; returns the new snapshot id."""
        table = self._writable(name)
        table.append(self._conform(name, data), snapshot_properties=lineage.summary())
        return _table_info(name, table).snapshot_id  # the commit refreshed ``table``

    def overwrite(
        self,
        name: str,
        data: pa.Table,
        lineage: Lineage,
        *,
        where: BooleanExpression = ALL_ROWS,
    ) -> int | None:
        """Replace the rows ``where`` selects (all by default) with ``data``, stamping the
        snapshot with ``lineage``; returns the new snapshot id."""
        table = self._writable(name)
        conformed = self._conform(name, data)
        if _table_info(name, table).rows == 0:
            # Overwriting an empty table would only add a no-op delete snapshot (and a warning).
            table.append(conformed, snapshot_properties=lineage.summary())
        else:
            table.overwrite(
                conformed, overwrite_filter=where, snapshot_properties=lineage.summary()
            )
        return _table_info(name, table).snapshot_id

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
