"""Source metadata (workspace, license, description), kept once per source in
``lineage.sources``.

Bronze rows keep the workspace and license they arrived with (bronze is never rewritten),
so a wrong license given at ingest is corrected here, in one row, and every reader of the
current metadata (lineage, gold) sees the correction without a re-ingest:

* :func:`record_sources` — ingest adds a row for a new source, and updates a known source
  only with values its spec sets (a value left at its default never overwrites one);
* :func:`set_source_metadata` — ``posttrain sources set``: one update fixes every record;
* :func:`source_metadata` — the current metadata per source;
* :func:`apply_source_metadata` — replaces ``workspace``/``license`` of rows by source.

Example:
    >>> set_source_metadata(warehouse, "math-tutor", license="CC-BY-SA-4.0")  # doctest: +SKIP
    >>> source_metadata(warehouse)["math-tutor"].license  # doctest: +SKIP
    'CC-BY-SA-4.0'
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.errors import CatalogError, ConfigError
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import LINEAGE_SOURCES, TableName
from posttrain.platform.warehouse import Warehouse

SOURCES_TABLE = TableName.LINEAGE_SOURCES
_DEFAULTS = SourceSpec.model_construct()
# Concurrent ingests of new sources all commit to this one small table; each retry reloads
# it, so a few more attempts than writers make a lost race very unlikely.
_COMMIT_ATTEMPTS = 12


@dataclass(frozen=True)
class SourceMetadata:
    """The current metadata of one source."""

    source: str
    workspace: str
    license: str
    description: str = ""
    updated_at: datetime | None = None


def source_metadata(
    warehouse: Warehouse, *, snapshot_id: int | None = None
) -> dict[str, SourceMetadata]:
    """The metadata of every recorded source, by name (empty before the first ingest).

    Args:
        snapshot_id: read this snapshot of ``lineage.sources`` (a pinned run), not the
            current one.
    """
    if not warehouse.exists(SOURCES_TABLE):
        return {}
    rows = warehouse.read(SOURCES_TABLE, snapshot_id=snapshot_id).to_pylist()
    return {
        row["source"]: SourceMetadata(
            source=row["source"],
            workspace=row["workspace"] or _DEFAULTS.workspace,
            license=row["license"] or _DEFAULTS.license,
            description=row["description"] or "",
            updated_at=row["updated_at"],
        )
        for row in rows
    }


def _from_bronze(warehouse: Warehouse, source: str) -> SourceMetadata | None:
    """A source ingested before ``lineage.sources`` existed: its metadata from bronze."""
    if not warehouse.exists(TableName.BRONZE_RECORDS):
        return None
    same_source = EqualTo(term=Reference("source"), value=literal(source))
    rows = warehouse.read(
        TableName.BRONZE_RECORDS,
        columns=("workspace", "license", "ingested_at"),
        row_filter=same_source,
    )
    if not rows.num_rows:
        return None
    latest = rows.take([pc.index(rows["ingested_at"], pc.max(rows["ingested_at"])).as_py()])
    return SourceMetadata(
        source,
        latest["workspace"][0].as_py() or _DEFAULTS.workspace,
        latest["license"][0].as_py() or _DEFAULTS.license,
    )


def _write(warehouse: Warehouse, entry: SourceMetadata, stage: str, *, new: bool) -> int | None:
    """Add (``new``) or replace the row of ``entry.source``; a lost commit race is retried
    on fresh table metadata, so each writer changes only its own source's row."""
    row = pa.Table.from_pylist(
        [
            {
                "source": entry.source,
                "workspace": entry.workspace,
                "license": entry.license,
                "description": entry.description,
                "updated_at": entry.updated_at,
            }
        ],
        schema=LINEAGE_SOURCES,
    )
    table = warehouse.ensure_table(SOURCES_TABLE)
    summary = Lineage(stage).summary()
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            if new:
                table.append(row, snapshot_properties=summary)
            else:
                same_source = EqualTo(term=Reference("source"), value=literal(entry.source))
                table.overwrite(row, overwrite_filter=same_source, snapshot_properties=summary)
        except CommitFailedException:
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
            table = warehouse.table(SOURCES_TABLE)
            new = entry.source not in source_metadata(warehouse)  # another writer added it?
            continue
        snapshot = table.current_snapshot()
        return snapshot.snapshot_id if snapshot else None
    raise CatalogError(
        f"could not update {SOURCES_TABLE} for source {entry.source!r}: other writers kept "
        "committing first; nothing was written, re-run the command"
    )


def _from_spec(spec: SourceSpec, known: SourceMetadata | None, now: datetime) -> SourceMetadata:
    if known is None:
        return SourceMetadata(spec.source, spec.workspace, spec.license, spec.description, now)
    changes = {
        name: getattr(spec, name)
        for name in ("workspace", "license", "description")
        if getattr(spec, name) != getattr(_DEFAULTS, name)
        and getattr(spec, name) != getattr(known, name)
    }
    return replace(known, **changes, updated_at=now) if changes else known


def record_sources(warehouse: Warehouse, specs: Iterable[SourceSpec]) -> list[str]:
    """Add or update the ``lineage.sources`` row of each spec's source; returns the sources
    whose row changed (none when everything is already recorded)."""
    known = source_metadata(warehouse)
    now = datetime.now(UTC)
    changed = []
    for spec in specs:
        entry = _from_spec(spec, known.get(spec.source), now)
        if entry != known.get(spec.source):
            _write(warehouse, entry, "ingest", new=spec.source not in known)
            changed.append(spec.source)
    return changed


def set_source_metadata(
    warehouse: Warehouse,
    source: str,
    *,
    workspace: str | None = None,
    license: str | None = None,
    description: str | None = None,
) -> SourceMetadata:
    """Correct the metadata of a source already ingested; ``None`` keeps a value.

    A source ingested before ``lineage.sources`` existed starts from its bronze values.

    Raises:
        ConfigError: the source was never ingested (naming the known ones), or a value is
            empty.
    """
    known = source_metadata(warehouse)
    new = source not in known
    if new:
        found = _from_bronze(warehouse, source)
        if found is None:
            names = ", ".join(sorted(known)) or "none yet: run `posttrain ingest` first"
            raise ConfigError(f"no source named {source!r}; known sources: {names}")
        known[source] = found
    changes = {
        name: value
        for name, value in (("workspace", workspace), ("license", license))
        if value is not None
    }
    empty = [f"--{name}" for name, value in changes.items() if not value.strip()]
    if empty:
        raise ConfigError(f"{', '.join(empty)} cannot be empty")
    if description is not None:
        changes["description"] = description
    entry = replace(known[source], **changes, updated_at=datetime.now(UTC))
    _write(warehouse, entry, "sources", new=new)
    return entry


def apply_source_metadata(rows: pa.Table, metadata: Mapping[str, SourceMetadata]) -> pa.Table:
    """``rows`` with ``workspace`` and ``license`` replaced by their source's current
    metadata; rows of a source with no recorded metadata keep their own values."""
    if "source" not in rows.column_names or not metadata:
        return rows
    names = pa.array(list(metadata), pa.string())
    at = pc.index_in(rows["source"], value_set=names)
    for name in ("workspace", "license"):
        if name not in rows.column_names:
            continue
        field = rows.field(name)
        current = pa.array([getattr(m, name) for m in metadata.values()], field.type)
        values = pc.if_else(pc.is_null(at), rows[name], pc.take(current, at))
        rows = rows.set_column(rows.column_names.index(name), field, values)
    return rows


def register_source(warehouse: Warehouse, source: str, workspace: str, description: str) -> bool:
    """Record ``source`` as belonging to ``workspace`` if it has no metadata yet (capture
    calls this before its first flush of a source); returns whether a row was added."""
    if source in source_metadata(warehouse):
        return False
    now = datetime.now(UTC)
    _write(
        warehouse,
        SourceMetadata(source, workspace, _DEFAULTS.license, description, now),
        "capture",
        new=True,
    )
    return True
