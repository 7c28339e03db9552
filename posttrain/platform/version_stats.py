"""What a corpus version holds, and what changed between two versions.

Both read only the key and grouping columns (``source``, ``license``, ``reason`` where a
table has them) of the pinned snapshots, batch by batch for the counts: never whole rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.schemas import TABLES
from posttrain.platform.versions import CorpusVersion
from posttrain.platform.warehouse import Warehouse

GROUP_COLUMNS = ("source", "license", "reason")
NONE = "(none)"


@dataclass
class Breakdown:
    """Row counts of one table: in total and per value of each grouping column."""

    rows: int = 0
    by: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, batch: pa.Table | pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for column in batch.schema.names:
            if column not in GROUP_COLUMNS:
                continue
            counts = self.by.setdefault(column, Counter())
            for item in pc.value_counts(batch.column(column)).to_pylist():
                value = item["values"]
                counts[NONE if value is None else str(value)] += int(item["counts"])

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, **{f"by_{k}": dict(v.most_common()) for k, v in self.by.items()}}


def _group_columns(table: str) -> tuple[str, ...]:
    names = TABLES[table].schema.names if table in TABLES else []
    return tuple(c for c in GROUP_COLUMNS if c in names)


def table_breakdown(warehouse: Warehouse, table: str, snapshot_id: int | None) -> Breakdown:
    """Rows of ``table`` at ``snapshot_id`` in total and per source, license and reason."""
    breakdown = Breakdown()
    columns = _group_columns(table)
    for column in columns:
        breakdown.by[column] = Counter()
    if snapshot_id is None or not warehouse.exists(table):
        return breakdown
    if not columns:
        breakdown.rows = warehouse.info(table, snapshot_id).rows
        return breakdown
    for batch in warehouse.read_batches(table, columns=columns, snapshot_id=snapshot_id):
        breakdown.add(batch)
    return breakdown


def version_summary(warehouse: Warehouse, version: CorpusVersion) -> dict[str, Breakdown]:
    """Table → its :class:`Breakdown` at the snapshot the version pins."""
    return {
        table: table_breakdown(warehouse, table, snapshot_id)
        for table, snapshot_id in sorted(version.snapshots.items())
    }


@dataclass
class TableDiff:
    """Rows of one table added and removed between two snapshots, matched by its key."""

    table: str
    old_snapshot: int | None
    new_snapshot: int | None
    added: Breakdown
    removed: Breakdown


def _keys_and_groups(
    warehouse: Warehouse, table: str, snapshot_id: int | None, columns: tuple[str, ...]
) -> pa.Table:
    schema = TABLES[table].schema
    empty = pa.schema([schema.field(c) for c in columns]).empty_table()
    if snapshot_id is None or not warehouse.exists(table):
        return empty
    data = warehouse.read(table, columns=columns, snapshot_id=snapshot_id)
    return data.select(list(columns)).cast(empty.schema) if data.num_rows else empty


def diff_table(warehouse: Warehouse, table: str, old: int | None, new: int | None) -> TableDiff:
    """Rows added and removed in ``table`` from snapshot ``old`` to ``new``, by key."""
    added, removed = Breakdown(), Breakdown()
    for column in _group_columns(table):
        added.by[column] = Counter()
        removed.by[column] = Counter()
    if old != new:
        key = TABLES[table].key
        columns = tuple(dict.fromkeys((*key, *_group_columns(table))))
        before = _keys_and_groups(warehouse, table, old, columns)
        after = _keys_and_groups(warehouse, table, new, columns)
        keys_only = list(key)
        added.add(after.join(before.select(keys_only), keys_only, join_type="left anti"))
        removed.add(before.join(after.select(keys_only), keys_only, join_type="left anti"))
    return TableDiff(table, old, new, added, removed)


def diff_versions(warehouse: Warehouse, old: CorpusVersion, new: CorpusVersion) -> list[TableDiff]:
    """Per table of either version: the rows ``new`` adds and removes compared to ``old``."""
    tables = sorted(set(old.snapshots) | set(new.snapshots))
    return [diff_table(warehouse, t, old.snapshots.get(t), new.snapshots.get(t)) for t in tables]
