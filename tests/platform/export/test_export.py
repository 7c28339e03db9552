"""`export_table`: same snapshot, same bytes; a manifest that checks the files; files that
`datasets.load_dataset` reads as they are; a destination that is never the warehouse."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_sample import sft_rows

from posttrain.platform.errors import ConfigError, ExportError, SnapshotNotFoundError
from posttrain.platform.export import MANIFEST, ROWS_PER_ROW_GROUP, _row_groups, export_table
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

SFT = TableName.GOLD_SFT


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _load(kind: str, folder: Path, tmp_path: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(
        kind, data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf")
    )


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_exporting_the_same_snapshot_twice_gives_the_same_bytes(
    sft_warehouse: Warehouse, tmp_path: Path, fmt: str
) -> None:
    export_table(sft_warehouse, SFT, tmp_path / "a", fmt)
    export_table(sft_warehouse, SFT, tmp_path / "b", fmt)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert sorted(_files(tmp_path / "a")) == [MANIFEST, f"train-00000-of-00001.{fmt}"]


def test_the_parquet_file_depends_on_the_rows_not_on_how_they_were_written(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    # The same 12 rows in one append (one data file) instead of two: a different snapshot,
    # different Iceberg files and batches, the same export bytes.
    other = Warehouse(WarehouseSettings.local(tmp_path / "other"))
    other.append(SFT, sft_warehouse.read(SFT), Lineage("gold"))
    first = export_table(sft_warehouse, SFT, tmp_path / "a", "parquet")
    second = export_table(other, SFT, tmp_path / "b", "parquet")
    assert first.snapshot_id != second.snapshot_id
    assert first.files == second.files


def test_manifest_names_table_snapshot_rows_schema_lineage_and_file_hashes(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    export_table(sft_warehouse, SFT, tmp_path / "out", "jsonl")
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    data = (tmp_path / "out" / "train-00000-of-00001.jsonl").read_bytes()
    assert manifest["table"] == "gold.sft"
    assert manifest["snapshot_id"] == sft_warehouse.snapshot_id(SFT)
    assert manifest["format"] == "jsonl"
    assert manifest["rows"] == 12
    assert [column["name"] for column in manifest["schema"]] == GOLD_SFT.names
    assert manifest["schema"][0] == {
        "name": "record_id",
        "type": "string",
        "nullable": False,
        "doc": "The bronze record this example came from.",
    }
    assert manifest["files"] == [
        {
            "path": "train-00000-of-00001.jsonl",
            "rows": 12,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    ]
    assert manifest["lineage"]["posttrain.input.silver.x"] == "2"
    assert manifest["lineage"]["posttrain.config-hash"] == "cfg"


def test_jsonl_messages_round_trip_through_load_dataset(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    export_table(sft_warehouse, SFT, tmp_path / "out", "jsonl")
    loaded = _load("json", tmp_path / "out", tmp_path)
    table = sft_warehouse.read(SFT)
    assert loaded["record_id"] == table["record_id"].to_pylist()
    assert loaded["messages"] == table["messages"].to_pylist()


def test_parquet_export_loads_with_load_dataset_as_the_table(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    export_table(sft_warehouse, SFT, tmp_path / "out", "parquet")
    loaded = _load("parquet", tmp_path / "out", tmp_path)
    assert loaded.to_list() == sft_warehouse.read(SFT).to_pylist()


def test_a_pinned_snapshot_export_leaves_out_a_later_append(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    pinned = sft_warehouse.snapshot_id(SFT)
    sft_warehouse.append(SFT, sft_rows(100, 3), Lineage("gold"))
    manifest = export_table(sft_warehouse, f"gold.sft@{pinned}", tmp_path / "out", "parquet")
    exported = pq.read_table(tmp_path / "out" / "train-00000-of-00001.parquet")
    assert manifest.snapshot_id == pinned
    assert manifest.ref == str(pinned)
    assert sorted(exported["record_id"].to_pylist()) == [f"r{i:03d}" for i in range(12)]
    assert exported.to_pylist() == sft_warehouse.read(SFT, snapshot_id=pinned).to_pylist()


def test_a_tag_resolves_to_its_snapshot(sft_warehouse: Warehouse, tmp_path: Path) -> None:
    table = sft_warehouse.table(SFT)
    first = table.snapshots()[0].snapshot_id
    table.manage_snapshots().create_tag(first, "v1").commit()
    manifest = export_table(sft_warehouse, "gold.sft@v1", tmp_path / "out", "jsonl")
    assert (manifest.snapshot_id, manifest.rows) == (first, 7)


def test_an_unknown_snapshot_id_names_the_refs_and_recent_ids(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    with pytest.raises(SnapshotNotFoundError, match=r"gold.sft@123: no snapshot id, tag"):
        export_table(sft_warehouse, "gold.sft@123", tmp_path / "out", "jsonl")
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_is_a_config_error(sft_warehouse: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--format 'csv'"):
        export_table(sft_warehouse, SFT, tmp_path / "out", "csv")


def test_a_non_empty_folder_is_refused_without_force(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_table(sft_warehouse, SFT, tmp_path / "out", "jsonl")
    assert _files(tmp_path / "out") == {"notes.txt": b"mine"}


def test_force_replaces_the_previous_export_and_keeps_other_files(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_table(sft_warehouse, SFT, out, "parquet")
    (out / "notes.txt").write_text("mine")
    export_table(sft_warehouse, SFT, out, "jsonl", force=True)
    assert sorted(_files(out)) == [MANIFEST, "notes.txt", "train-00000-of-00001.jsonl"]


def test_an_out_that_is_a_file_is_refused(sft_warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_table(sft_warehouse, SFT, tmp_path / "out", "jsonl", force=True)


def test_nothing_is_written_into_the_warehouse_folder(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    inside = tmp_path / "home" / "warehouse" / "exports"
    with pytest.raises(ExportError, match="inside the warehouse folder"):
        export_table(sft_warehouse, SFT, inside, "jsonl", force=True)
    assert not inside.exists()


def test_row_groups_have_fixed_sizes_whatever_the_batches() -> None:
    values = pa.array(range(2 * ROWS_PER_ROW_GROUP + 5), pa.int64())
    schema = pa.schema([("n", pa.int64())])
    cuts = [0, 3, 1000, 1001, 4000, len(values)]
    batches = [
        pa.record_batch([values[start:stop]], schema=schema)
        for start, stop in itertools.pairwise(cuts)
    ]
    groups = list(_row_groups(iter(batches), schema))
    assert [group.num_rows for group in groups] == [ROWS_PER_ROW_GROUP, ROWS_PER_ROW_GROUP, 5]
    assert pa.concat_tables(groups)["n"].to_pylist() == values.to_pylist()
