"""What ``posttrain tables`` prints, read straight from the embedded catalog when it can be.

Importing pyiceberg costs about half a second of CPU before a single table is opened, more
than the whole command should take. For the embedded default (pyiceberg's ``SqlCatalog`` on
a SQLite file, table metadata on local disk) the listing needs only what the Iceberg spec
fixes: the catalog row's ``metadata_location`` and, in that metadata file, the current
snapshot's id, timestamp and ``total-records``/``total-files-size`` summary. Any other
catalog (Postgres, REST, Glue, metadata on S3) returns ``None`` here, and the caller asks
pyiceberg (:meth:`~posttrain.platform.warehouse.Warehouse.info`), which gives the same
figures.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

if TYPE_CHECKING:
    from posttrain.platform.settings import WarehouseSettings

# pyiceberg's SqlCatalog marks tables (as opposed to views) so; NULL in catalogs it wrote
# before it had views.
_TABLE_TYPE = "TABLE"


@dataclass(frozen=True)
class TableInfo:
    """What ``posttrain tables`` prints for one table."""

    name: str
    rows: int
    snapshot_id: int | None
    size_bytes: int
    updated_at: datetime | None


def table_info(name: str, metadata: dict[str, Any]) -> TableInfo:
    """Rows, snapshot id, size and last update from an Iceberg table metadata document."""
    current = metadata.get("current-snapshot-id")
    snapshot = next(
        (s for s in metadata.get("snapshots") or [] if s.get("snapshot-id") == current), None
    )
    if current is None or current == -1 or snapshot is None:
        return TableInfo(name=name, rows=0, snapshot_id=None, size_bytes=0, updated_at=None)
    summary = snapshot.get("summary") or {}
    return TableInfo(
        name=name,
        rows=int(summary.get("total-records") or 0),
        snapshot_id=int(current),
        size_bytes=int(summary.get("total-files-size") or 0),
        updated_at=datetime.fromtimestamp(snapshot["timestamp-ms"] / 1000, tz=UTC),
    )


def _sqlite_path(settings: WarehouseSettings) -> Path | None:
    uri = settings.catalog_uri or ""
    if settings.catalog_type != "sql" or not uri.startswith("sqlite:///") or "?" in uri:
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _local_path(location: str) -> Path | None:
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    return Path(location) if parts.scheme == "" else None


def _read_metadata(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    # pyiceberg names gzip-compressed metadata *.gz.metadata.json; the magic bytes decide.
    document = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: table metadata is not a JSON object")
    return document


def embedded_table_infos(settings: WarehouseSettings) -> list[TableInfo] | None:
    """Every table of an embedded SQLite catalog with local metadata, sorted by name.

    Returns ``None`` when the catalog is anything else (or cannot be read this way), so the
    caller falls back to pyiceberg; an embedded catalog not created yet has no tables.
    """
    database = _sqlite_path(settings)
    if database is None:
        return None
    if not database.is_file():
        return []
    try:
        read_only = f"{database.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as connection:
            columns = {row[1] for row in connection.execute("PRAGMA table_info(iceberg_tables)")}
            if not columns:
                return []
            only_tables = (
                f" AND (iceberg_type = '{_TABLE_TYPE}' OR iceberg_type IS NULL)"
                if "iceberg_type" in columns
                else ""
            )
            rows = connection.execute(
                "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                f"WHERE catalog_name = ?{only_tables}",
                (settings.catalog_name,),
            ).fetchall()
        infos = []
        for namespace, table, location in rows:
            path = _local_path(location or "")
            if path is None:
                return None
            infos.append(table_info(f"{namespace}.{table}", _read_metadata(path)))
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError):
        return None  # pyiceberg reads it, or reports the problem properly
    return sorted(infos, key=lambda info: info.name)
