"""A tiny real corpus (bronze → silver → gold with lineage inputs) for version tests."""

from __future__ import annotations

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse

MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def _rows(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TABLES[name].schema)


def build(
    warehouse: Warehouse,
    ids: range,
    *,
    source: str = "web",
    license: str | None = "MIT",
    rejected: range = range(0),
) -> dict[str, int | None]:
    """Append records ``ids`` through bronze, silver and gold; return the new snapshots."""
    bronze = [
        {
            "record_id": f"r{i}",
            "payload": "{}",
            "row_index": i + 1,
            "source": source,
            "source_uri": f"file:///data/{source}.jsonl",
            "license": license,
        }
        for i in [*ids, *rejected]
    ]
    b = warehouse.append(
        TableName.BRONZE_RECORDS, _rows(TableName.BRONZE_RECORDS, bronze), Lineage("ingest")
    )
    conversations = [
        {"record_id": f"r{i}", "messages": MESSAGES, "source": source, "license": license}
        for i in ids
    ]
    silver = Lineage("silver", {TableName.BRONZE_RECORDS: b}, "silvercfg")
    s = warehouse.append(
        TableName.SILVER_CONVERSATIONS, _rows(TableName.SILVER_CONVERSATIONS, conversations), silver
    )
    rejections = [{"record_id": f"r{i}", "reason": "empty", "source": source} for i in rejected]
    warehouse.append(
        TableName.SILVER_REJECTIONS, _rows(TableName.SILVER_REJECTIONS, rejections), silver
    )
    gold = Lineage("gold.sft", {TableName.SILVER_CONVERSATIONS: s}, "goldcfg")
    warehouse.append(TableName.GOLD_SFT, _rows(TableName.GOLD_SFT, conversations), gold)
    return warehouse.pin(
        TableName.SILVER_CONVERSATIONS, TableName.SILVER_REJECTIONS, TableName.GOLD_SFT
    )
