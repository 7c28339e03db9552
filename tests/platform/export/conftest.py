"""A small real warehouse whose ``gold.sft`` holds varied conversations in two data files."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_sample import sft_rows

from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings


@pytest.fixture
def sft_warehouse(tmp_path: Path) -> Warehouse:
    """gold.sft with 12 rows written by two appends (two data files, two snapshots)."""
    warehouse = Warehouse(WarehouseSettings.local(tmp_path / "home"))
    warehouse.append(TableName.GOLD_SFT, sft_rows(0, 7), Lineage("gold", {"silver.x": 1}, "cfg"))
    warehouse.append(TableName.GOLD_SFT, sft_rows(7, 5), Lineage("gold", {"silver.x": 2}, "cfg"))
    return warehouse
