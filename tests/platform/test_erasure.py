"""``posttrain forget``: a record leaves every layer, branch, version and file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from posttrain.platform import checks, curation
from posttrain.platform.erasure import ErasureError, forget
from posttrain.platform.schemas import TableName
from posttrain.platform.versions import create_version, resolve, versions
from posttrain.platform.warehouse import Warehouse
from curated_warehouse import MARKER, build

SECRET = f"{MARKER} my phone is 555-0199"
LAYERS = [
    TableName.BRONZE_RECORDS,
    TableName.SILVER_CONVERSATIONS,
    TableName.SILVER_REJECTIONS,
    TableName.GOLD_SFT,
]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _files_holding(root: Path, marker: str) -> list[str]:
    """Every file under ``root`` whose bytes, or whose Parquet values once decoded, hold
    ``marker`` (Parquet pages are zstd-compressed, so raw bytes alone prove nothing)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if marker.encode() in path.read_bytes():
            found.append(str(path))
        elif path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            if any(marker in s for row in rows for s in _strings(row)):
                found.append(str(path))
    return found


@pytest.fixture
def erasable(warehouse: Warehouse) -> Warehouse:
    build(warehouse, {"secret": SECRET, "r2": "beta two", "r3": "gamma three", "r4": "delta"})
    return warehouse


def _warehouse_root(warehouse: Warehouse) -> Path:
    return Path(warehouse.settings.warehouse.removeprefix("file://"))


def test_forget_removes_a_record_from_every_layer_version_branch_and_file(
    erasable: Warehouse,
) -> None:
    root = _warehouse_root(erasable)
    create_version(erasable, "sft", "v1", created_by="ana")
    curation.create_branch(erasable, TableName.GOLD_SFT, "review-x")
    curation.drop_rows(erasable, TableName.GOLD_SFT, "review-x", "record_id = 'r4'")
    assert _files_holding(root, MARKER)  # the attack works before the erasure

    report = forget(erasable, record_ids=["secret"], requested_by="dpo")

    for name in LAYERS:
        ids = erasable.read(name)["record_id"].to_pylist()
        assert "secret" not in ids, name
    packs = erasable.read(TableName.GOLD_SFT_PACKED).to_pylist()
    assert all("secret" not in p["record_ids"] for p in packs)
    assert checks.packs_cover_records(erasable).passed
    assert checks.packs_fit(erasable, 4096).passed
    assert checks.duplicates_point_to_kept(erasable).passed
    # The version is recut: same name, rewritten snapshots without the record.
    for name in (TableName.GOLD_SFT, TableName.GOLD_SFT_PACKED):
        table, snapshot = resolve(erasable, f"{name}@v1")
        data = erasable.read(table, snapshot_id=snapshot).to_pylist()
        assert not any(MARKER in s for row in data for s in _strings(row))
    assert "sft/v1" in report.versions_recut
    assert any(v.version == "v1" for v in versions(erasable, "sft"))
    branch = curation.branch_snapshot(erasable, TableName.GOLD_SFT, "review-x")
    assert "secret" not in erasable.read(TableName.GOLD_SFT, snapshot_id=branch)[
        "record_id"
    ].to_pylist()
    # Recorded: one lineage.erasures row per ref rewritten, snapshot summaries name it.
    logged = erasable.read(TableName.LINEAGE_ERASURES).to_pylist()
    assert {(r["table_name"], r["ref"]) for r in logged} >= {
        (TableName.BRONZE_RECORDS, "main"),
        (TableName.GOLD_SFT, "review-x"),
        (TableName.GOLD_SFT, "sft/v1"),
    }
    bronze = erasable.snapshot_summary(TableName.BRONZE_RECORDS)
    assert bronze["posttrain.erasure.id"] == report.erasure_id
    # No byte of it is left anywhere in the warehouse: data, manifests, metadata.
    assert _files_holding(root, MARKER) == []
    assert report.snapshots_expired > 0 and report.files_deleted > 0


def test_forget_by_source_uri_and_by_filter(warehouse: Warehouse) -> None:
    build(warehouse, {"a1": "one", "a2": "two"}, uri="/data/a.jsonl")
    report = forget(warehouse, source_uri="/data/a.jsonl")
    assert sorted(report.record_ids) == ["a1", "a2", "dup-of-a1"]
    assert warehouse.read(TableName.BRONZE_RECORDS).num_rows == 0
    with pytest.raises(ErasureError, match="no record matches"):
        forget(warehouse, where="source_uri = '/nowhere'")


def test_forget_with_a_retention_keeps_old_snapshots_until_expiry(erasable: Warehouse) -> None:
    from datetime import timedelta

    from posttrain.platform.erasure import expire

    report = forget(erasable, record_ids=["secret"], retention=timedelta(hours=1))
    assert report.snapshots_retained > 0
    assert _files_holding(_warehouse_root(erasable), MARKER)  # kept for the retention
    expire(erasable, erasable.table_names(), timedelta(0))
    assert _files_holding(_warehouse_root(erasable), MARKER) == []


def test_the_erasure_log_keeps_no_filter_text(erasable: Warehouse) -> None:
    forget(erasable, where=f"payload = '{json.dumps('x')}' or record_id = 'secret'")
    selectors = erasable.read(TableName.LINEAGE_ERASURES)["selector"].to_pylist()
    assert all(s.startswith("sha256:") for s in selectors)
