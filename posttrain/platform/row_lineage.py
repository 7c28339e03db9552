"""Where one row came from and where it went: its bronze record, source file and license,
the corpus versions that hold it, and, when those tables exist, the checkpoints trained on
those versions and its per-item eval results.

Example:
    >>> trace_row(warehouse, "gold.sft", "3f2a...")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.schemas import TableName
from posttrain.platform.versions import versions
from posttrain.platform.warehouse import Warehouse

# Tables other helpers add; read only when they exist, by their names.
CHECKPOINTS_TABLE = "lineage.checkpoints"
EVAL_RESULTS_TABLE = "eval.results"
_RECORD_COLUMNS = ("record_id", "source_id", "chosen_record_id")
_PAYLOAD_CHARS = 4000


@dataclass
class RowLineage:
    """What the platform knows about one row's origin and use."""

    table: str
    key: str
    record_id: str | None
    bronze: dict[str, Any] | None
    source: dict[str, Any] | None
    versions: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    eval_results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _one(
    warehouse: Warehouse, table: str, column: str, value: str, snapshot_id: int | None = None
) -> dict[str, Any] | None:
    if not warehouse.exists(table):
        return None
    loaded = warehouse.table(table)
    if column not in loaded.schema().column_names:
        return None
    rows = loaded.scan(
        row_filter=EqualTo(term=Reference(column), value=literal(value)),
        snapshot_id=snapshot_id,
        limit=1,
    ).to_arrow()
    return rows.to_pylist()[0] if rows.num_rows else None


def trace_row(
    warehouse: Warehouse, table: str, key_column: str, key: str, row: dict[str, Any]
) -> RowLineage:
    """The lineage of ``row`` (of ``table``, identified by ``key_column`` = ``key``)."""
    record_id = next((str(row[c]) for c in _RECORD_COLUMNS if row.get(c)), None)
    bronze = None
    if record_id is not None:
        bronze = _one(warehouse, TableName.BRONZE_RECORDS, "record_id", record_id)
    if bronze is not None:
        bronze.pop("payload_bytes", None)
        payload = bronze.get("payload")
        if isinstance(payload, str) and len(payload) > _PAYLOAD_CHARS:
            bronze["payload"] = payload[:_PAYLOAD_CHARS] + "…"
    source_name = (bronze or row).get("source")
    source = (
        _one(warehouse, TableName.LINEAGE_SOURCES, "source", str(source_name))
        if source_name
        else None
    )
    result = RowLineage(table, key, record_id, bronze, source)
    if record_id is None:
        result.notes.append("this row names no bronze record")
    loaded = warehouse.table(table)
    integer = str(loaded.schema().find_field(key_column).field_type) in ("int", "long")
    value: Any = int(key) if integer else key
    for version in versions(warehouse):
        snapshot = version.snapshots.get(table)
        if snapshot is None:
            continue
        held = loaded.scan(
            row_filter=EqualTo(term=Reference(key_column), value=literal(value)),
            selected_fields=(key_column,),
            snapshot_id=snapshot,
            limit=1,
        ).to_arrow()
        if held.num_rows:
            result.versions.append(
                {
                    "corpus": version.corpus,
                    "version": version.version,
                    "snapshot_id": snapshot,
                    "created_at": str(getattr(version, "created_at", "") or ""),
                }
            )
    result.checkpoints = _checkpoints(warehouse, result.versions)
    result.eval_results = _eval_results(warehouse, record_id, key)
    return result


def _checkpoints(warehouse: Warehouse, held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``lineage.checkpoints`` that name a version or snapshot holding the row."""
    if not held or not warehouse.exists(CHECKPOINTS_TABLE):
        return []
    needles = (
        {str(v["snapshot_id"]) for v in held}
        | {f"{v['corpus']}@{v['version']}" for v in held}
        | {f"@{v['version']}" for v in held}
    )
    found = []
    for row in warehouse.read(CHECKPOINTS_TABLE).to_pylist():
        text = json.dumps(row, default=str)
        if any(needle in text for needle in needles):
            found.append({k: v for k, v in row.items() if not isinstance(v, bytes)})
    return found


def _eval_results(warehouse: Warehouse, record_id: str | None, key: str) -> list[dict[str, Any]]:
    if not warehouse.exists(EVAL_RESULTS_TABLE):
        return []
    loaded = warehouse.table(EVAL_RESULTS_TABLE)
    names = loaded.schema().column_names
    for column, value in (("record_id", record_id), ("item_id", key), ("prompt_id", key)):
        if column in names and value:
            rows = loaded.scan(
                row_filter=EqualTo(term=Reference(column), value=literal(value)), limit=100
            ).to_arrow()
            found: list[dict[str, Any]] = rows.to_pylist()
            return found
    return []
