"""Test data for the outcomes tests: bronze records and silver conversations, and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import BRONZE_RECORDS, SILVER_CONVERSATIONS, TableName
from posttrain.platform.warehouse import Warehouse

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_conversations(
    warehouse: Warehouse, ids: list[str], *, ingested_at: datetime, source: str = "agent"
) -> None:
    """Bronze records ``ids`` ingested at ``ingested_at`` and a silver conversation each."""
    bronze = pa.Table.from_pylist(
        [
            {
                "record_id": rid,
                "payload": "{}",
                "row_index": i + 1,
                "source": source,
                "ingested_at": ingested_at,
            }
            for i, rid in enumerate(ids)
        ],
        schema=BRONZE_RECORDS,
    )
    silver = pa.Table.from_pylist(
        [
            {
                "record_id": rid,
                "source": source,
                "license": "MIT",
                "messages": [
                    {"role": "user", "content": f"q {rid}"},
                    {"role": "assistant", "content": f"a {rid}"},
                ],
            }
            for rid in ids
        ],
        schema=SILVER_CONVERSATIONS,
    )
    warehouse.append(TableName.BRONZE_RECORDS, bronze, Lineage("test"))
    warehouse.append(TableName.SILVER_CONVERSATIONS, silver, Lineage("test"))


def at(hours: float) -> str:
    """ISO time ``hours`` after T0."""
    return (T0 + timedelta(hours=hours)).isoformat()
