"""Fixtures: a warehouse with a few bronze records and their silver conversations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from outcomes_data import T0, add_conversations

from posttrain.platform.warehouse import Warehouse


@pytest.fixture
def conversations(warehouse: Warehouse) -> Warehouse:
    """Records r1..r4 ingested at T0 - 2 days, r5 and r6 at T0 - 1 hour (still young)."""
    add_conversations(warehouse, ["r1", "r2", "r3", "r4"], ingested_at=T0 - timedelta(days=2))
    add_conversations(warehouse, ["r5", "r6"], ingested_at=T0 - timedelta(hours=1), source="web")
    return warehouse
