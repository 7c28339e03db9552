"""`posttrain tables` reads the embedded catalog directly, and agrees with pyiceberg."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.listing import embedded_table_infos
from posttrain.platform.schemas import SILVER_REJECTIONS, TableName
from posttrain.platform.settings import WarehouseSettings
from posttrain.platform.warehouse import Warehouse


def _rejections(*ids: str) -> pa.Table:
    rows = [{"record_id": record_id, "reason": "empty"} for record_id in ids]
    return pa.Table.from_pylist(rows, schema=SILVER_REJECTIONS)


def test_listing_equals_pyiceberg_for_written_and_empty_tables(warehouse: Warehouse) -> None:
    warehouse.append(TableName.SILVER_REJECTIONS, _rejections("a", "b"), Lineage("t"))
    warehouse.append(TableName.SILVER_REJECTIONS, _rejections("c"), Lineage("t"))
    warehouse.ensure_table(TableName.BRONZE_RECORDS)  # created, never written: no snapshot

    listed = embedded_table_infos(warehouse.settings)

    expected = [warehouse.info(name) for name in warehouse.table_names()]
    assert listed == expected
    assert [info.rows for info in listed] == [0, 3]


def test_listing_a_home_without_a_catalog_yet_is_empty(tmp_path: Path) -> None:
    assert embedded_table_infos(WarehouseSettings.local(tmp_path / "new")) == []
    assert not (tmp_path / "new").exists()


def test_listing_leaves_other_catalogs_to_pyiceberg(tmp_path: Path) -> None:
    rest = WarehouseSettings(
        catalog_type="rest", catalog_uri="http://catalog:8181", warehouse="s3://lake"
    )
    postgres = WarehouseSettings(catalog_uri="postgresql://db/lake", warehouse=tmp_path.as_uri())
    assert embedded_table_infos(rest) is None
    assert embedded_table_infos(postgres) is None


def test_listing_leaves_metadata_on_object_storage_to_pyiceberg(warehouse: Warehouse) -> None:
    warehouse.append(TableName.SILVER_REJECTIONS, _rejections("a"), Lineage("t"))
    database = warehouse.settings.catalog_uri.removeprefix("sqlite:///")  # type: ignore[union-attr]
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE iceberg_tables SET metadata_location = 's3://lake/m.json'")
    assert embedded_table_infos(warehouse.settings) is None
