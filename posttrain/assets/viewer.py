"""The viewer's tables as external assets: written by the dataset viewer (``posttrain
view``), never materialized by Dagster; shown in the UI with their column docs."""

from __future__ import annotations

from posttrain.assets._support import table_spec
from posttrain.platform.schemas import TableName

vibe_checks = table_spec(TableName.LINEAGE_VIBE_CHECKS, group="viewer")
row_notes = table_spec(TableName.LINEAGE_ROW_NOTES, group="viewer")
