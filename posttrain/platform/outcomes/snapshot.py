"""Filtered snapshots: the rows of a pinned snapshot matching a filter, frozen as a table.

``freeze(warehouse, "silver.labeled", "reward > 0 and source = 'agent'", "agent-pos")``
reads the table's current (or given) snapshot with the filter, writes the rows to a new
table ``snapshots.agent_pos`` and tags its snapshot ``agent-pos``. The snapshot summary
and a row of ``lineage.filtered_snapshots`` (written last) record the source table, its
snapshot id, the filter and the source's outcome cut-off. A name is frozen once: freezing
it again is refused, so a published filtered snapshot never changes.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from sqlalchemy.exc import IntegrityError

from posttrain.platform.errors import ConfigError
from posttrain.platform.lineage import Lineage
from posttrain.platform.outcomes.labeled import OUTCOME_CUTOFF_KEY
from posttrain.platform.query import parse_row_filter
from posttrain.platform.schemas import LINEAGE_FILTERED_SNAPSHOTS, SNAPSHOTS_NAMESPACE, TableName
from posttrain.platform.warehouse import DEFAULT_TABLE_PROPERTIES, Warehouse

LINEAGE_TABLE = TableName.LINEAGE_FILTERED_SNAPSHOTS
SOURCE_TABLE_KEY = "posttrain.source-table"
SOURCE_SNAPSHOT_KEY = "posttrain.source-snapshot"
FILTER_KEY = "posttrain.filter"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class FrozenSnapshot:
    """What :func:`freeze` wrote."""

    name: str
    table: str
    source_table: str
    source_snapshot_id: int
    filter: str
    outcome_cutoff: str | None
    snapshot_id: int
    rows: int


def table_for(name: str) -> str:
    """The table a filtered snapshot named ``name`` lives in: ``agent-pos`` →
    ``snapshots.agent_pos``.

    Raises:
        ConfigError: ``name`` is not lower-case letters, digits, ``-`` and ``_``.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"--as {name!r}: a snapshot name is lower-case letters, digits, '-' and '_', "
            "starting with a letter (e.g. agent-pos)"
        )
    return f"{SNAPSHOTS_NAMESPACE}.{name.replace('-', '_')}"


def freeze(
    warehouse: Warehouse,
    source_table: str,
    row_filter: str,
    name: str,
    *,
    snapshot_id: int | None = None,
) -> FrozenSnapshot:
    """Freeze the rows of ``source_table`` matching ``row_filter`` as table and tag ``name``.

    Args:
        warehouse: the warehouse holding ``source_table``.
        source_table: e.g. ``silver.labeled``.
        row_filter: pyiceberg filter syntax, e.g. ``reward > 0 and source = 'agent'``.
        name: the snapshot's name (``--as``), also its tag.
        snapshot_id: the snapshot to read (default: the current one, pinned first).

    Raises:
        QueryError: the filter does not parse (with the column where it stopped) or names
            an unknown column.
        ConfigError: a bad or already used name, a table with no snapshot, or no matching
            rows.
    """
    target = table_for(name)
    source = warehouse.table(source_table)
    expression = parse_row_filter(source, row_filter, "--filter")
    if snapshot_id is None:
        snapshot_id = warehouse.snapshot_id(source_table)
    if snapshot_id is None or source.snapshot_by_id(snapshot_id) is None:
        raise ConfigError(f"{source_table} has no snapshot {snapshot_id}: nothing to freeze")
    if warehouse.exists(target):
        raise ConfigError(f"a snapshot named {name!r} already exists ({target}); pick another name")
    rows = warehouse.read(source_table, row_filter=expression, snapshot_id=snapshot_id)
    if rows.num_rows == 0:
        raise ConfigError(
            f"--filter {row_filter!r} matches no row of {source_table} at snapshot "
            f"{snapshot_id}; nothing frozen"
        )
    cutoff = warehouse.snapshot_summary(source_table, snapshot_id).get(OUTCOME_CUTOFF_KEY)
    with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
        warehouse.catalog.create_namespace(SNAPSHOTS_NAMESPACE)
    try:
        table = warehouse.catalog.create_table(
            target,
            schema=source.scan(snapshot_id=snapshot_id).projection(),
            properties=DEFAULT_TABLE_PROPERTIES,
        )
    except (TableAlreadyExistsError, IntegrityError):
        raise ConfigError(
            f"a snapshot named {name!r} already exists ({target}); pick another name"
        ) from None
    lineage = Lineage(
        "snapshot",
        {source_table: snapshot_id},
        properties={
            SOURCE_TABLE_KEY: source_table,
            SOURCE_SNAPSHOT_KEY: str(snapshot_id),
            FILTER_KEY: row_filter,
            OUTCOME_CUTOFF_KEY: cutoff or "none",
        },
    )
    table.append(rows.cast(table.schema().as_arrow()), snapshot_properties=lineage.summary())
    frozen_id = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
    table.manage_snapshots().create_tag(frozen_id, name).commit()
    row = {
        "name": name,
        "table": target,
        "source_table": source_table,
        "source_snapshot_id": snapshot_id,
        "filter": row_filter,
        "outcome_cutoff": cutoff,
        "snapshot_id": frozen_id,
        "rows": rows.num_rows,
        "created_at": datetime.now(UTC),
    }
    warehouse.append_new(
        LINEAGE_TABLE,
        pa.Table.from_pylist([row], schema=LINEAGE_FILTERED_SNAPSHOTS),
        "name",
        Lineage("snapshot", {target: frozen_id}),
    )
    return FrozenSnapshot(
        name, target, source_table, snapshot_id, row_filter, cutoff, frozen_id, rows.num_rows
    )
