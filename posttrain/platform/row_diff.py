"""Rows added, removed and changed between two snapshots of one table, with the reason.

Rows are matched by the table's key (:data:`posttrain.platform.schemas.TABLES`); a row in
both whose content differs is *changed*. DuckDB reads the two snapshots' data files in
the :mod:`posttrain.platform.query` sandbox and compares a hash of each row, so only keys
and hashes are held, then only the page of rows shown is read whole.

The reason for each row, where the platform recorded one:

* ``erasure`` — the key is among the record ids of a ``lineage.erasures`` row whose
  snapshot after is in the new snapshot's history;
* ``fix`` / ``drop`` / ``relabel`` — a curation edit between the two snapshots
  (``posttrain.edit.*`` in the snapshot summaries; a fix names its record);
* ``dedup`` — a removed record that ``silver.rejections`` now holds as a duplicate;
* ``new source`` — an added row whose source the old snapshot did not have.

The totals per source, license and reason come from
:func:`posttrain.platform.version_stats.diff_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import In, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.errors import QueryError
from posttrain.platform.query import SANDBOX, table_data
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.version_stats import TableDiff, diff_table
from posttrain.platform.warehouse import Warehouse

DIFF_KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class RowChange:
    """One row of the diff: its key, the row before and after (``None`` when absent),
    and why it changed when the platform knows."""

    key: str
    kind: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str


@dataclass
class RowDiff:
    """The counts of each kind and one page of changed rows."""

    table: str
    old_snapshot: int | None
    new_snapshot: int | None
    counts: dict[str, int]
    rows: list[RowChange]
    kind: str
    offset: int
    breakdown: TableDiff | None
    edits: list[dict[str, str]] = field(default_factory=list)


def _key_column(table: str) -> str:
    spec = TABLES.get(table)
    if spec is None or len(spec.key) != 1:
        raise QueryError(f"{table} has no single key column: its versions cannot be diffed by row")
    return spec.key[0]


def _edits_between(
    warehouse: Warehouse, table: str, old: int | None, new: int | None
) -> list[dict[str, str]]:
    """The ``posttrain.*`` summaries of the snapshots after ``old`` up to ``new``."""
    loaded = warehouse.table(table)
    found: list[dict[str, str]] = []
    snapshot = loaded.snapshot_by_id(new) if new is not None else None
    while snapshot is not None and snapshot.snapshot_id != old:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        props = {k: v for k, v in summary.items() if k.startswith("posttrain.")}
        if props:
            found.append({"snapshot_id": str(snapshot.snapshot_id), **props})
        parent = snapshot.parent_snapshot_id
        snapshot = loaded.snapshot_by_id(parent) if parent is not None else None
    return found


def _erased(warehouse: Warehouse, table: str, keys: list[str]) -> dict[str, str]:
    if not keys or not warehouse.exists(TableName.LINEAGE_ERASURES):
        return {}
    rows = warehouse.read(
        TableName.LINEAGE_ERASURES,
        columns=("erasure_id", "table_name", "record_ids"),
        row_filter=f"table_name = '{table}'",
    ).to_pylist()
    wanted = set(keys)
    return {
        key: f"erasure {row['erasure_id']}"
        for row in rows
        for key in (row["record_ids"] or [])
        if key in wanted
    }


def _deduped(warehouse: Warehouse, keys: list[str]) -> dict[str, str]:
    if not keys or not warehouse.exists(TableName.SILVER_REJECTIONS):
        return {}
    rows = warehouse.read(
        TableName.SILVER_REJECTIONS,
        columns=("record_id", "reason", "kept_record_id"),
        row_filter=In(term=Reference("record_id"), values={literal(k) for k in keys}),
    ).to_pylist()
    return {
        row["record_id"]: f"dedup ({row['reason']}, kept {row['kept_record_id']})"
        for row in rows
        if row["reason"] in ("exact_dup", "near_dup")
    }


def _hashes(warehouse: Warehouse, table: str, snapshot: int | None, key: str) -> pa.Table:
    import duckdb

    empty = pa.table({"k": pa.array([], pa.string()), "h": pa.array([], pa.uint64())})
    if snapshot is None:
        return empty
    con = duckdb.connect(config=dict(SANDBOX))
    try:
        con.register("t", table_data(warehouse.table(table), snapshot))
        con.execute("SET lock_configuration = true")
        return con.sql(f'select cast("{key}" as varchar) k, hash(t) h from t').to_arrow_table()
    finally:
        con.close()


def _rows(
    warehouse: Warehouse, table: str, snapshot: int | None, key: str, keys: list[str]
) -> dict[str, dict[str, Any]]:
    if snapshot is None or not keys:
        return {}
    loaded = warehouse.table(table)
    integer = str(loaded.schema().find_field(key).field_type) in ("int", "long")
    values: set[Any] = {literal(int(k)) if integer else literal(k) for k in keys}
    data = loaded.scan(
        row_filter=In(term=Reference(key), values=values), snapshot_id=snapshot
    ).to_arrow()
    return {str(row[key]): row for row in data.to_pylist()}


def diff_rows(
    warehouse: Warehouse,
    table: str,
    old: int | None,
    new: int | None,
    *,
    kind: str = "changed",
    offset: int = 0,
    limit: int = 20,
) -> RowDiff:
    """The rows of ``table`` that ``new`` adds, removes or changes against ``old``.

    ``kind`` picks which rows make the page (``added``, ``removed`` or ``changed``);
    the counts cover all three.

    Raises:
        QueryError: the table has no single key column, or ``kind`` is unknown.
    """
    import duckdb

    if kind not in DIFF_KINDS:
        raise QueryError(f"diff kind {kind!r}: choose added, removed or changed")
    key = _key_column(table)
    before = _hashes(warehouse, table, old, key)
    after = _hashes(warehouse, table, new, key)
    con = duckdb.connect(config=dict(SANDBOX))
    try:
        con.register("a", before)
        con.register("b", after)
        joined = con.sql(
            "select coalesce(a.k, b.k) k, case when a.k is null then 'added' "
            "when b.k is null then 'removed' else 'changed' end kind "
            "from a full outer join b on a.k = b.k "
            "where a.k is null or b.k is null or a.h <> b.h order by 2, 1"
        ).to_arrow_table()
    finally:
        con.close()
    kinds = joined.column("kind").to_pylist()
    keys = joined.column("k").to_pylist()
    counts = {name: kinds.count(name) for name in DIFF_KINDS}
    page_keys = [k for k, kd in zip(keys, kinds, strict=True) if kd == kind][
        offset : offset + limit
    ]
    old_rows = _rows(warehouse, table, old, key, page_keys) if kind != "added" else {}
    new_rows = _rows(warehouse, table, new, key, page_keys) if kind != "removed" else {}
    edits = _edits_between(warehouse, table, old, new)
    reasons = _reasons(warehouse, table, kind, page_keys, old, old_rows, new_rows, edits)
    rows = [
        RowChange(k, kind, old_rows.get(k), new_rows.get(k), reasons.get(k, "")) for k in page_keys
    ]
    breakdown = diff_table(warehouse, table, old, new) if table in TABLES else None
    return RowDiff(table, old, new, counts, rows, kind, offset, breakdown, edits)


def _reasons(
    warehouse: Warehouse,
    table: str,
    kind: str,
    keys: list[str],
    old: int | None,
    old_rows: Mapping[str, dict[str, Any]],
    new_rows: Mapping[str, dict[str, Any]],
    edits: list[dict[str, str]],
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    if kind == "removed":
        reasons.update(_deduped(warehouse, keys))
        reasons.update(_erased(warehouse, table, keys))
        drops = [e for e in edits if e.get("posttrain.edit.action") == "drop"]
        for key in keys:
            if key not in reasons and drops:
                edit = drops[-1]
                reasons[key] = (
                    f"drop by {edit.get('posttrain.curator', '?')}: "
                    f"{edit.get('posttrain.edit.filter', '')}"
                )
    elif kind == "changed":
        for edit in edits:
            action = edit.get("posttrain.edit.action")
            fixed = edit.get("posttrain.edit.fixed-from", "")
            who = edit.get("posttrain.curator", "?")
            if action == "fix":
                record = fixed.rsplit("@", 1)[0]
                if record in keys:
                    columns = edit.get("posttrain.edit.columns", "")
                    reasons.setdefault(record, f"fix by {who} ({columns})")
            elif action == "relabel":
                for key in keys:
                    reasons.setdefault(
                        key,
                        f"relabel by {who}: {edit.get('posttrain.edit.columns', '')} "
                        f"where {edit.get('posttrain.edit.filter', '')}",
                    )
        erasure = next((e for e in edits if "posttrain.erasure.id" in e), None)
        if erasure is not None:
            for key in keys:
                reasons.setdefault(key, f"erasure {erasure['posttrain.erasure.id']} (rewritten)")
    elif kind == "added":
        old_sources = _sources(warehouse, table, old)
        for key, row in new_rows.items():
            source = row.get("source")
            if source is not None and source not in old_sources:
                reasons[key] = f"new source {source}"
            elif source is not None:
                reasons[key] = f"new record from {source}"
    return reasons


def _sources(warehouse: Warehouse, table: str, snapshot: int | None) -> set[str]:
    if snapshot is None:
        return set()
    loaded = warehouse.table(table)
    if "source" not in loaded.schema().column_names:
        return set()
    column = loaded.scan(selected_fields=("source",), snapshot_id=snapshot).to_arrow()
    return {str(v) for v in column.column("source").unique().to_pylist() if v is not None}
