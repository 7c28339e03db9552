"""`load`: a pinned snapshot as a `datasets` dataset, streamed from Iceberg in Arrow batches."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pytest
from export_sample import sft_rows

from posttrain.platform.errors import ConfigError, MissingDependencyError, TableNotFoundError
from posttrain.platform.lineage import Lineage
from posttrain.platform.loader import load
from posttrain.platform.refs import resolve, stream_batches
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

pytest.importorskip("datasets")

SFT = TableName.GOLD_SFT


def test_streaming_yields_every_row_exactly_once_in_table_order(
    sft_warehouse: Warehouse,
) -> None:
    from datasets import IterableDataset

    dataset = load(SFT, streaming=True, warehouse=sft_warehouse)
    assert isinstance(dataset, IterableDataset)
    assert list(dataset) == sft_warehouse.read(SFT).to_pylist()


def test_streaming_hands_out_arrow_batches(sft_warehouse: Warehouse) -> None:
    dataset = load(SFT, ["record_id"], streaming=True, warehouse=sft_warehouse)
    batches = list(dataset.with_format("arrow").iter(batch_size=5))
    assert all(isinstance(batch, pa.Table) for batch in batches)
    assert pa.concat_tables(batches)["record_id"].to_pylist() == (
        sft_warehouse.read(SFT)["record_id"].to_pylist()
    )


def test_the_scan_reads_data_files_one_after_another_in_batches(
    sft_warehouse: Warehouse,
) -> None:
    # Two appends, two data files: at least one batch per file, in scan order.
    batches = list(stream_batches(resolve(sft_warehouse, SFT), ("record_id",)))
    assert len(batches) >= 2
    ids = [value for batch in batches for value in batch["record_id"].to_pylist()]
    assert ids == sft_warehouse.read(SFT)["record_id"].to_pylist()


def test_a_stream_stays_on_its_snapshot_after_a_later_append(
    sft_warehouse: Warehouse,
) -> None:
    dataset = load(SFT, ["record_id"], streaming=True, warehouse=sft_warehouse)
    sft_warehouse.append(SFT, sft_rows(100, 3), Lineage("gold"))
    assert sorted(row["record_id"] for row in dataset) == [f"r{i:03d}" for i in range(12)]


def test_in_memory_dataset_equals_the_snapshot_and_reuses_its_cache_file(
    sft_warehouse: Warehouse, tmp_path: Path
) -> None:
    from datasets import Dataset

    pinned = sft_warehouse.snapshot_id(SFT)
    first = load(
        f"gold.sft@{pinned}",
        ["record_id", "messages"],
        warehouse=sft_warehouse,
        cache_dir=tmp_path / "cache",
    )
    assert isinstance(first, Dataset)
    assert first.to_list() == sft_warehouse.read(SFT, columns=("record_id", "messages")).to_pylist()
    [cached] = (tmp_path / "cache").iterdir()
    mtime = cached.stat().st_mtime_ns
    again = load(
        f"gold.sft@{pinned}",
        ["record_id", "messages"],
        warehouse=sft_warehouse,
        cache_dir=tmp_path / "cache",
    )
    assert again.to_list() == first.to_list()
    assert cached.stat().st_mtime_ns == mtime
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [cached.name]


def test_an_unknown_column_names_the_columns_there_are(sft_warehouse: Warehouse) -> None:
    with pytest.raises(ConfigError, match=r"gold\.sft has no column.* prompt; columns: record_id"):
        load(SFT, ["prompt"], streaming=True, warehouse=sft_warehouse)


def test_an_unknown_table_lists_the_tables(sft_warehouse: Warehouse) -> None:
    with pytest.raises(TableNotFoundError, match=r"gold\.sft"):
        load("gold.dpo", streaming=True, warehouse=sft_warehouse)


def test_without_datasets_the_error_names_the_pip_command(
    sft_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'datasets>=5.2'"):
        load(SFT, warehouse=sft_warehouse)


def test_a_table_whose_schema_evolved_streams_through_pyiceberg_reader(
    sft_warehouse: Warehouse,
) -> None:
    # The files of the first two appends still say "license": only pyiceberg's field-id
    # mapping reads them as "licence".
    table = sft_warehouse.table(SFT)
    with table.update_schema() as update:
        update.rename_column("license", "licence")
    later = sft_rows(100, 2).rename_columns(
        ["licence" if name == "license" else name for name in sft_rows(0, 1).column_names]
    )
    table.append(later.cast(table.schema().as_arrow()))
    batches = stream_batches(resolve(sft_warehouse, SFT), ("record_id", "licence"))
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert rows == table.scan(selected_fields=("record_id", "licence")).to_arrow().to_pylist()
    assert len(rows) == 14
    assert {row["licence"] for row in rows} == {None, "CC0-1.0"}


def test_a_streaming_dataset_pickles_for_dataloader_workers(sft_warehouse: Warehouse) -> None:
    import pickle

    dataset = load(SFT, ["record_id"], streaming=True, warehouse=sft_warehouse)
    copy = pickle.loads(pickle.dumps(dataset))
    assert list(copy) == list(dataset)


def test_shards_are_data_files_and_together_hold_every_row_once(
    sft_warehouse: Warehouse,
) -> None:
    dataset = load(SFT, ["record_id"], streaming=True, warehouse=sft_warehouse)
    assert dataset.num_shards == 2  # two appends, two data files
    shards = [[row["record_id"] for row in dataset.shard(2, index)] for index in range(2)]
    assert all(shards)
    assert shards[0] + shards[1] == sft_warehouse.read(SFT)["record_id"].to_pylist()


def test_a_file_is_read_in_row_group_windows_every_row_once_from_any_row(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One reader per window keeps memory flat in file size (refs._row_group_windows).
    import pyarrow.parquet as pq
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    from posttrain.platform import refs

    warehouse.catalog.create_namespace("scratch")
    warehouse.catalog.create_table(
        "scratch.windows",
        schema=Schema(NestedField(1, "id", LongType(), required=False)),
        properties={"write.parquet.row-group-limit": "10"},
    )
    warehouse.append("scratch.windows", pa.table({"id": list(range(95))}), Lineage("test"))
    monkeypatch.setattr(refs, "READ_WINDOW_BYTES", 1)  # a window per row group
    pinned = resolve(warehouse, "scratch.windows")
    [task] = list(pinned.table.scan().plan_files())
    path = task.file.file_path.removeprefix("file://")
    assert pq.ParquetFile(path).metadata.num_row_groups == 10
    ids = [i for batch in stream_batches(pinned) for i in batch["id"].to_pylist()]
    assert ids == list(range(95))
    for start in (0, 9, 10, 11, 57, 94):
        tail = refs.ScanPlan(pinned).batches(skip_rows=start)
        assert [i for batch in tail for i in batch["id"].to_pylist()] == list(range(start, 95))
