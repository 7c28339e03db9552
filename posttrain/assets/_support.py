"""Small helpers shared by the asset modules: asset keys, metadata, check results."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa

from posttrain.platform import checks
from posttrain.platform.checks import CheckOutcome
from posttrain.platform.schemas import TABLES, TableSpec, column_doc
from posttrain.platform.warehouse import TableInfo, Warehouse

# One Dagster concurrency pool per layer: the instance (dagster.yaml, ``concurrency.pools``)
# lets one op per pool run at a time across all runs, so two runs of the same assets
# serialize instead of racing; the second then finds nothing new and commits nothing.
WRITER_POOLS = {layer: f"posttrain-{layer}" for layer in ("bronze", "silver", "gold", "eval")}


def table_key(name: str) -> dg.AssetKey:
    """The asset key of an Iceberg table: ``silver.rejections`` → ``silver/rejections``."""
    return dg.AssetKey(name.split("."))


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """The table's columns with their docs, shown in the asset's Overview tab in the UI."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(field.name, str(field.type), description=column_doc(field) or None)
            for field in schema
        ]
    )


def _table(spec: TableSpec | str) -> TableSpec:
    return TABLES[spec] if isinstance(spec, str) else spec


def table_spec(
    table: TableSpec | str, *, group: str, deps: list[str] | None = None
) -> dg.AssetSpec:
    """An AssetSpec for a posttrain table, with its description and column schema."""
    spec = _table(table)
    name = spec.name
    return dg.AssetSpec(
        key=table_key(name),
        group_name=group,
        description=spec.description,
        deps=[table_key(dep) for dep in deps or []],
        kinds={"iceberg", "pyarrow"},
        # str(): a TableName member would not serialize to the webserver (plain str only).
        metadata={"dagster/column_schema": column_schema(spec.schema), "table": str(name)},
    )


@dataclass
class Stopwatch:
    """Wall time of a block, for the cost figures in materialization metadata."""

    started: float = 0.0
    seconds: float = 0.0

    @classmethod
    @contextmanager
    def run(cls) -> Iterator[Stopwatch]:
        watch = cls(started=time.monotonic())
        try:
            yield watch
        finally:
            watch.seconds = time.monotonic() - watch.started


def table_metadata(
    warehouse: Warehouse,
    name: str,
    *,
    snapshot_id: int | None,
    committed: bool = True,
    seconds: float,
    rows_processed: int,
    bytes_processed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rows, snapshot, lineage and cost figures of ``name`` at the snapshot the run wrote
    (or kept, when it had nothing new to commit: ``committed=False``), never whatever is
    current now."""
    if snapshot_id is None:  # the run left the table without a snapshot: nothing in it
        info = TableInfo(name, rows=0, snapshot_id=None, size_bytes=0, updated_at=None)
        summary: dict[str, Any] = {}
    else:
        info = warehouse.info(name, snapshot_id)
        summary = warehouse.snapshot_summary(name, snapshot_id)
    bytes_written = int(summary.get("added-files-size", 0)) if committed else 0
    seconds = max(seconds, 1e-9)
    metadata: dict[str, Any] = {
        "dagster/row_count": info.rows,
        "snapshot_id": dg.MetadataValue.text(str(info.snapshot_id)),
        "table_size_mb": round(info.size_bytes / 1e6, 3),
        "bytes_written": bytes_written,
        "duration_s": round(seconds, 3),
        "rows_per_s": round(rows_processed / seconds, 1),
        "mb_per_s": round(bytes_processed / 1e6 / seconds, 3),
        "config_hash": summary.get("posttrain.config-hash", ""),
        "code_version": summary.get("posttrain.code-version", ""),
        "inputs": dg.MetadataValue.json(
            {
                k.removeprefix("posttrain.input."): v
                for k, v in summary.items()
                if k.startswith("posttrain.input.")
            }
        ),
    }
    metadata.update(extra or {})
    return metadata


def check_result(
    outcome: CheckOutcome,
    *,
    asset: str,
    check_name: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    """Turn a platform :class:`CheckOutcome` into a Dagster check result."""
    return dg.AssetCheckResult(
        asset_key=table_key(asset),
        check_name=check_name,
        passed=outcome.passed,
        description=outcome.description,
        metadata=dict(outcome.metadata),
        severity=severity,
    )


def integrity_check_specs(spec: TableSpec | str) -> list[dg.AssetCheckSpec]:
    """The blocking checks every table has: its key is unique, its schema is as declared."""
    table = _table(spec)
    key = "_".join(table.key)
    return [
        dg.AssetCheckSpec(f"{key}_unique", asset=table_key(table.name), blocking=True),
        dg.AssetCheckSpec("schema_matches", asset=table_key(table.name), blocking=True),
    ]


def integrity_check_results(
    warehouse: Warehouse, spec: TableSpec | str, snapshot_id: int | None
) -> list[dg.AssetCheckResult]:
    """Results for :func:`integrity_check_specs`, read from the snapshot the run wrote."""
    table = _table(spec)
    key = "_".join(table.key)
    at = {table.name: snapshot_id}
    return [
        check_result(
            checks.keys_unique(warehouse, table.name, at=at),
            asset=table.name,
            check_name=f"{key}_unique",
        ),
        check_result(
            checks.schema_matches(warehouse, table.name, table.schema, at=at),
            asset=table.name,
            check_name="schema_matches",
        ),
    ]


def table_result(
    warehouse: Warehouse,
    spec: TableSpec | str,
    snapshot_id: int | None,
    *,
    metadata: dict[str, Any],
    checks: Mapping[str, CheckOutcome] | None = None,
    warnings: Mapping[str, CheckOutcome] | None = None,
) -> dg.MaterializeResult:
    """A table asset's materialization: ``metadata``, the table's own ``checks`` (blocking
    errors) and ``warnings``, and the integrity checks read at ``snapshot_id``.

    >>> table_result(wh, "gold.sft", report.snapshot_id, metadata=meta,  # doctest: +SKIP
    ...              checks={"rows_match_silver": checks.sft_records(wh, at=at)})
    """
    name = _table(spec).name

    def results(
        outcomes: Mapping[str, CheckOutcome] | None, severity: dg.AssetCheckSeverity
    ) -> list[dg.AssetCheckResult]:
        return [
            check_result(outcome, asset=name, check_name=check, severity=severity)
            for check, outcome in (outcomes or {}).items()
        ]

    return dg.MaterializeResult(
        asset_key=table_key(name),
        metadata=metadata,
        check_results=[
            *results(checks, dg.AssetCheckSeverity.ERROR),
            *integrity_check_results(warehouse, spec, snapshot_id),
            *results(warnings, dg.AssetCheckSeverity.WARN),
        ],
    )
