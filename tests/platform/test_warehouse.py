"""The Iceberg warehouse: tables from the registry, lineage on every snapshot, clear errors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy import text

from posttrain.platform.errors import CatalogError, TableNotFoundError
from posttrain.platform.lineage import (
    CONFIG_HASH_KEY,
    INPUT_PREFIX,
    STAGE_KEY,
    Lineage,
    inputs_from_summary,
)
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.warehouse import Warehouse, WarehouseSettings


def _rejections(*ids: str) -> pa.Table:
    return pa.table({"record_id": list(ids), "reason": ["empty"] * len(ids)}).append_column(
        "detail", pa.array(["no text"] * len(ids))
    )


def _full(table: pa.Table) -> pa.Table:
    columns = {
        name: table[name] if name in table.column_names else pa.nulls(table.num_rows)
        for name in SILVER_REJECTIONS.names
    }
    return pa.table(columns).cast(SILVER_REJECTIONS)


def test_append_creates_the_table_and_stamps_lineage(warehouse: Warehouse) -> None:
    snapshot = warehouse.append(
        "silver.rejections",
        _full(_rejections("a", "b")),
        Lineage("silver", {"bronze.records": 7}, "cafe"),
    )
    summary = warehouse.snapshot_summary("silver.rejections")
    assert snapshot == warehouse.snapshot_id("silver.rejections")
    assert summary[STAGE_KEY] == "silver"
    assert summary[CONFIG_HASH_KEY] == "cafe"
    assert summary[INPUT_PREFIX + "bronze.records"] == "7"
    assert inputs_from_summary(summary) == {"bronze.records": 7}


def test_overwrite_replaces_rows_and_keeps_history(warehouse: Warehouse) -> None:
    first = warehouse.overwrite("silver.rejections", _full(_rejections("a", "b")), Lineage("t"))
    warehouse.overwrite("silver.rejections", _full(_rejections("c")), Lineage("t"))
    assert warehouse.read("silver.rejections")["record_id"].to_pylist() == ["c"]
    assert warehouse.read("silver.rejections", snapshot_id=first).num_rows == 2


def test_read_filters_with_iceberg_expressions(warehouse: Warehouse) -> None:
    warehouse.append("silver.rejections", _full(_rejections("a", "b", "c")), Lineage("t"))
    rows = warehouse.read(
        "silver.rejections", row_filter="record_id != 'b'", columns=("record_id",)
    )
    assert sorted(rows["record_id"].to_pylist()) == ["a", "c"]


def test_data_missing_a_column_is_refused_before_writing(warehouse: Warehouse) -> None:
    with pytest.raises(CatalogError, match="lacks columns"):
        warehouse.append("silver.rejections", pa.table({"record_id": ["a"]}), Lineage("t"))
    assert warehouse.snapshot_id("silver.rejections") is None


def test_unknown_table_names_the_tables_that_exist(warehouse: Warehouse) -> None:
    warehouse.append("silver.rejections", _full(_rejections("a")), Lineage("t"))
    with pytest.raises(TableNotFoundError, match=r"silver\.rejections"):
        warehouse.table("silver.rejection")
    with pytest.raises(TableNotFoundError):
        warehouse.table("no_namespace")


def test_info_reports_rows_snapshot_and_size(warehouse: Warehouse) -> None:
    warehouse.append("silver.rejections", _full(_rejections("a", "b")), Lineage("t"))
    info = warehouse.info("silver.rejections")
    assert info.rows == 2
    assert info.snapshot_id == warehouse.snapshot_id("silver.rejections")
    assert info.size_bytes > 0


def test_a_table_written_by_an_older_version_gains_the_new_optional_columns(
    warehouse: Warehouse,
) -> None:
    older = pa.schema([f for f in SILVER_REJECTIONS if f.name not in ("source_uri", "row_index")])
    warehouse.catalog.create_namespace("silver")
    table = warehouse.catalog.create_table("silver.rejections", schema=older)
    table.append(_full(_rejections("old")).select(older.names).cast(older))

    new = _full(_rejections("new"))
    new = new.set_column(new.schema.get_field_index("row_index"), "row_index", pa.array([7]))
    warehouse.append("silver.rejections", new, Lineage("silver"))

    rows = warehouse.read("silver.rejections", columns=("record_id", "row_index")).to_pylist()
    assert sorted(rows, key=lambda row: row["record_id"]) == [
        {"record_id": "new", "row_index": 7},
        {"record_id": "old", "row_index": None},
    ]


def test_opening_a_new_catalog_while_another_process_creates_it_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser of the check-then-create race in pyiceberg's SQL catalog opens again."""
    home = tmp_path / "home"
    create_tables = SqlCatalog.create_tables
    raced = []

    def another_process_wins_first(catalog: SqlCatalog) -> None:
        if not raced:  # the rival creates the tables between our check and our create
            raced.append(True)
            create_tables(catalog)
            with catalog.engine.begin() as connection:
                connection.execute(text("CREATE TABLE iceberg_tables (x INTEGER)"))
        create_tables(catalog)

    monkeypatch.setattr(SqlCatalog, "create_tables", another_process_wins_first)

    warehouse = Warehouse(WarehouseSettings.local(home))

    assert raced and warehouse.table_names() == []


def test_a_write_in_odd_chunks_fills_data_files_with_whole_row_groups(
    warehouse: Warehouse,
) -> None:
    # Files that start mid row group would make every block a blend reads after them
    # straddle two files (a copy each); see warehouse._in_row_groups.
    import pyarrow.parquet as pq
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    warehouse.catalog.create_namespace("scratch")
    warehouse.catalog.create_table(
        "scratch.aligned",
        schema=Schema(
            NestedField(1, "id", LongType(), required=False),
            NestedField(2, "text", StringType(), required=False),
        ),
        properties={
            "write.parquet.row-group-limit": "100",
            "write.target-file-size-bytes": "20000",  # several files for 800 rows
        },
    )
    sizes, start, chunks = [37, 250, 113, 400], 0, []
    for size in sizes:
        ids = list(range(start, start + size))
        chunks.append(pa.table({"id": ids, "text": [f"row {i:04d} " * 4 for i in ids]}))
        start += size
    data = pa.concat_tables(chunks)
    warehouse.append("scratch.aligned", data, Lineage("test"))

    table = warehouse.table("scratch.aligned")
    files = [task.file for task in table.scan().plan_files()]
    assert len(files) > 1
    partial = [file.record_count for file in files if file.record_count % 100]
    assert len(partial) <= 1 and sum(file.record_count for file in files) == 800
    for file in files:
        metadata = pq.ParquetFile(file.file_path.removeprefix("file://")).metadata
        groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        assert all(rows == 100 for rows in groups[:-1]), groups
    read = table.scan().to_arrow().sort_by("id")
    assert read["id"].to_pylist() == list(range(800))
    assert read["text"].to_pylist() == data["text"].to_pylist()
