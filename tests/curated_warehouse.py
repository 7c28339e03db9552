"""A small consistent warehouse (bronze → silver → gold, packs) written directly, for the
curation and erasure tests."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse

# Shorter than the 16 characters pyiceberg keeps of a string column's bounds in manifests,
# and first in its column's sort order, so the bounds hold it whole.
MARKER = "ZQX-FORGET-77"


def _messages(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": text, "name": None, "tool_calls": None, "tool_call_id": None},
        {
            "role": "assistant",
            "content": "ok " + text,
            "name": None,
            "tool_calls": None,
            "tool_call_id": None,
        },
    ]


def _write(warehouse: Warehouse, name: str, rows: list[dict[str, Any]]) -> None:
    warehouse.append(name, pa.Table.from_pylist(rows, schema=TABLES[name].schema), Lineage("test"))


def build(
    warehouse: Warehouse,
    texts: dict[str, str],
    *,
    uri: str = "/data/a.jsonl",
    uris: dict[str, str] | None = None,
) -> None:
    """Records ``texts`` (record id → text): all kept and packed two per pack, plus one
    duplicate rejection ``dup-of-<first id>`` pointing to the first record. ``uris`` gives
    some records their own source file."""
    ids = list(texts)
    where = {rid: (uris or {}).get(rid, uri) for rid in [*ids, f"dup-of-{ids[0]}"]}
    dup = f"dup-of-{ids[0]}"
    _write(
        warehouse,
        TableName.BRONZE_RECORDS,
        [
            {
                "record_id": rid,
                "payload": json.dumps({"messages": _messages(text)}),
                "row_index": i + 1,
                "source": "s",
                "source_uri": where[rid],
                "license": "MIT",
            }
            for i, (rid, text) in enumerate([*texts.items(), (dup, "a near copy")])
        ],
    )
    _write(
        warehouse,
        TableName.SILVER_CONVERSATIONS,
        [
            {
                "record_id": rid,
                "messages": _messages(text),
                "source": "s",
                "source_uri": where[rid],
                "license": "MIT",
            }
            for rid, text in texts.items()
        ],
    )
    _write(
        warehouse,
        TableName.SILVER_REJECTIONS,
        [
            {
                "record_id": dup,
                "reason": "near_dup",
                "kept_record_id": ids[0],
                "source": "s",
                "detail": "same text",
            }
        ],
    )
    _write(
        warehouse,
        TableName.GOLD_SFT,
        [
            {"record_id": rid, "messages": _messages(text), "source": "s", "license": "MIT"}
            for rid, text in texts.items()
        ],
    )
    packs = []
    for pack_id, start in enumerate(range(0, len(ids), 2)):
        members = ids[start : start + 2]
        lengths = [len(texts[r]) for r in members]
        tokens = [ord(c) for r in members for c in texts[r]]
        packs.append(
            {
                "pack_id": pack_id,
                "input_ids": tokens,
                "assistant_masks": [1] * len(tokens),
                "seq_lengths": lengths,
                "record_ids": members,
                "num_tokens": len(tokens),
            }
        )
    _write(warehouse, TableName.GOLD_SFT_PACKED, packs)
