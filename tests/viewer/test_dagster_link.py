"""Each asset's materialization metadata links to its table in the viewer."""

from __future__ import annotations

import dagster as dg
import pytest

from posttrain.assets._support import table_metadata
from posttrain.platform.warehouse import Warehouse


def test_table_metadata_links_to_the_table_in_the_viewer(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTTRAIN_VIEWER_URL", "https://viewer.example/view/")
    metadata = table_metadata(
        warehouse, "gold.sft", snapshot_id=None, seconds=1.0, rows_processed=0, bytes_processed=0
    )
    assert metadata["viewer"] == dg.MetadataValue.url("https://viewer.example/view/t/gold.sft")
