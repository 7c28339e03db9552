"""SQL over the warehouse: each table is a DuckDB view named namespace.table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from posttrain.platform.lineage import Lineage
from posttrain.platform.query import QueryError, run_query
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.warehouse import Warehouse


def _write(warehouse: Warehouse, reasons: list[str]) -> None:
    rows = [{"record_id": f"r{i}", "reason": reason} for i, reason in enumerate(reasons)]
    warehouse.append(
        "silver.rejections", pa.Table.from_pylist(rows, schema=SILVER_REJECTIONS), Lineage("t")
    )


def test_tables_are_addressable_by_their_names(warehouse: Warehouse) -> None:
    _write(warehouse, ["near_dup", "near_dup", "empty"])
    result = run_query(
        warehouse, "select reason, count(*) n from silver.rejections group by 1 order by 2 desc"
    )
    assert result.to_pylist() == [{"reason": "near_dup", "n": 2}, {"reason": "empty", "n": 1}]


def test_queries_see_the_current_snapshot_only(warehouse: Warehouse) -> None:
    _write(warehouse, ["empty"])
    warehouse.overwrite("silver.rejections", SILVER_REJECTIONS.empty_table(), Lineage("t"))
    assert run_query(warehouse, "select count(*) n from silver.rejections").to_pylist() == [
        {"n": 0}
    ]


def test_a_bad_query_names_the_tables_there_are(warehouse: Warehouse) -> None:
    _write(warehouse, ["empty"])
    with pytest.raises(QueryError, match=r"silver\.rejections"):
        run_query(warehouse, "select * from gold.nothing")
