"""One small real warehouse for the blend tests: a corpus version, a plain table written in
several files and small row groups, and a filtered snapshot of it."""

from __future__ import annotations

import pytest
from blend_data import NUMS, NUMS_ROWS, NUMS_SCHEMA, nums
from versions_data import build

from posttrain.platform.lineage import Lineage
from posttrain.platform.outcomes.snapshot import freeze
from posttrain.platform.versions import create_version
from posttrain.platform.warehouse import Warehouse, WarehouseSettings


@pytest.fixture(scope="module")
def blend_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """``gold.sft@v1`` (20 rows; 10 more appended after the version), ``t.nums`` (90 rows)
    and ``snapshots.low_nums`` (``t.nums`` where id < 25)."""
    home = tmp_path_factory.mktemp("blend") / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    build(warehouse, range(20))
    create_version(warehouse, "sft", "v1", created_by="test")
    build(warehouse, range(20, 30))
    warehouse.catalog.create_namespace("t")
    warehouse.catalog.create_table(
        NUMS, schema=NUMS_SCHEMA, properties={"write.parquet.row-group-limit": "8"}
    )
    for start in range(0, NUMS_ROWS, 30):
        warehouse.append(NUMS, nums(start, 30), Lineage("test"))
    freeze(warehouse, NUMS, "id < 25", "low-nums")
    return warehouse
