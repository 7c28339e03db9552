"""``posttrain forget``: a record leaves every layer, branch, version and file."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curated_warehouse import MARKER, build

from posttrain.platform import checks, curation
from posttrain.platform.erasure import ErasureError, forget
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.versions import create_version, resolve, versions
from posttrain.platform.warehouse import Warehouse

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


def _avro_long(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), at


def _avro_blocks(data: bytes) -> bytes:
    """The decompressed blocks of an Avro container file (manifests and manifest lists are
    deflate-compressed, so their raw bytes hide what the column bounds hold)."""
    assert data[:4] == b"Obj\x01"
    at, meta = 4, {}
    while True:  # the header's metadata map
        count, at = _avro_long(data, at)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, at = _avro_long(data, at)
        for _ in range(count):
            size, at = _avro_long(data, at)
            key = data[at : at + size].decode()
            at += size
            size, at = _avro_long(data, at)
            meta[key] = data[at : at + size]
            at += size
    at += 16  # sync marker
    codec = meta.get("avro.codec", b"null").decode()
    out = b""
    while at < len(data):
        _, at = _avro_long(data, at)
        size, at = _avro_long(data, at)
        block = data[at : at + size]
        at += size + 16
        out += zlib.decompress(block, -15) if codec == "deflate" else block
        assert codec in ("deflate", "null"), codec
    return out


def _files_holding(root: Path, marker: str) -> list[str]:
    """Every file under ``root`` whose bytes, Avro blocks or Parquet values once decoded
    hold ``marker`` (Parquet pages are zstd-compressed, Avro blocks deflated, so raw bytes
    alone prove nothing)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if marker.encode() in raw:
            found.append(str(path))
        elif path.suffix == ".avro":
            if marker.encode() in _avro_blocks(raw):
                found.append(str(path))
        elif path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
            if any(marker in s for row in rows for s in _strings(row)):
                found.append(str(path))
    return found


@pytest.fixture
def erasable(warehouse: Warehouse) -> Warehouse:
    # The file name holds the marker too: a top-level string, so the manifests' column
    # bounds hold it (truncated to 16 characters) until the erasure drops them.
    build(
        warehouse,
        {"secret": SECRET, "r2": "beta two", "r3": "gamma three", "r4": "delta"},
        uris={"secret": f"{MARKER}.jsonl"},
    )
    prompts = [
        {"prompt_id": f"s:{rid}", "reference": text, "source": "s", "source_id": rid}
        for rid, text in (("secret", SECRET), ("r2", "beta two"))
    ]
    warehouse.append(
        TableName.GOLD_RL_PROMPTS,
        pa.Table.from_pylist(prompts, schema=TABLES[TableName.GOLD_RL_PROMPTS].schema),
        Lineage("test"),
    )
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
    tasks = erasable.read(TableName.GOLD_RL_PROMPTS)["source_id"].to_pylist()
    assert tasks == ["r2"]
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
    assert (
        "secret"
        not in erasable.read(TableName.GOLD_SFT, snapshot_id=branch)["record_id"].to_pylist()
    )
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


def test_a_branch_cut_before_an_erasure_cannot_be_published(erasable: Warehouse) -> None:
    curation.create_branch(erasable, TableName.GOLD_SFT, "old")
    curation.drop_rows(erasable, TableName.GOLD_SFT, "old", "record_id = 'r4'")
    forget(erasable, record_ids=["secret"])
    with pytest.raises(curation.PublishRefusedError, match="erasure"):
        curation.publish(erasable, TableName.GOLD_SFT, "old")


def test_forget_cleans_up_after_an_erasure_that_was_killed(erasable: Warehouse) -> None:
    # A killed erasure leaves its temporary branch, on a snapshot holding the record.
    bronze = erasable.table(TableName.BRONZE_RECORDS)
    head = erasable.snapshot_id(TableName.BRONZE_RECORDS)
    assert head is not None
    bronze.manage_snapshots().create_branch(head, "posttrain-erasure-dead").commit()

    forget(erasable, record_ids=["secret"])

    assert "posttrain-erasure-dead" not in erasable.table(TableName.BRONZE_RECORDS).metadata.refs
    assert _files_holding(_warehouse_root(erasable), MARKER) == []


def test_an_erased_record_does_not_come_back_when_its_file_is_ingested_again(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    from posttrain.platform.ingest.bronze import ingest
    from posttrain.platform.ingest.sources import SourceSpec

    path = tmp_path / "chats.jsonl"
    path.write_text(
        "".join(
            json.dumps({"instruction": f"Say {n}.", "input": "", "output": str(n)}) + "\n"
            for n in range(3)
        )
    )
    ingest(warehouse, [SourceSpec(path=path, source="numbers")])
    ids = sorted(warehouse.read(TableName.BRONZE_RECORDS)["record_id"].to_pylist())
    forget(warehouse, record_ids=[ids[0]])

    ingest(warehouse, [SourceSpec(path=path, source="numbers")])

    assert sorted(warehouse.read(TableName.BRONZE_RECORDS)["record_id"].to_pylist()) == ids[1:]


def test_old_orphan_files_are_deleted_and_a_concurrent_writers_fresh_files_kept(
    erasable: Warehouse,
) -> None:
    import os
    import time

    data = _warehouse_root(erasable) / "gold" / "sft" / "data"
    some_file = next(data.glob("*.parquet"))
    crashed = data / "left-by-a-crashed-write.parquet"  # holds the record, nothing refers to it
    crashed.write_bytes(some_file.read_bytes())
    two_hours_ago = time.time() - 7200
    os.utime(crashed, (two_hours_ago, two_hours_ago))
    in_flight = data / "a-concurrent-writer-about-to-commit.parquet"
    in_flight.write_bytes(b"not committed yet")

    forget(erasable, record_ids=["secret"])

    assert not crashed.exists()
    assert in_flight.exists()
