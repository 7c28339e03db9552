"""The flusher: a segment lands once per table, even when it is flushed again after a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from posttrain.platform.capture.flusher import BATCH_KEY, capture_flushes, flush_segment
from posttrain.platform.capture.wal import WriteAheadLog, encode_entry
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse


def _record(payload: str, at: int) -> dict[str, Any]:
    """A WAL entry of one captured record (session r1 of workspace alpha)."""
    return {
        "k": "r1",
        "t": "r",
        "at": at,
        "row": {
            "record_id": "r1",
            "payload": payload,
            "source": "alpha/capture",
            "source_uri": "capture://alpha/sessions/s1",
            "workspace": "alpha",
            "format": "openai",
        },
    }


def _segment(tmp_path: Path, *entries: bytes) -> Path:
    """The one WAL segment holding ``entries`` (encoded JSON objects)."""
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append_sync(b"".join(encode_entry(entry) for entry in entries), len(entries))
    wal.close()
    (segment,) = WriteAheadLog.segments(wal)
    return segment


def _entries() -> list[bytes]:
    record = _record('{"messages": []}', 1_700_000_000_000_000)
    outcome = {
        "k": "o1",
        "t": "o",
        "at": 1_700_000_000_000_000,
        "row": {
            "outcome_id": "x1",
            "record_id": "r1",
            "kind": "reward",
            "value": 1.0,
            "source": "alpha/capture",
            "event_id": "o1",
            "workspace": "alpha",
        },
    }
    return [json.dumps(entry).encode() for entry in (record, outcome)]


def test_a_segment_flushed_twice_lands_once(tmp_path: Path, warehouse: Warehouse) -> None:
    segment = _segment(tmp_path, *_entries())
    events, first = flush_segment(warehouse, segment)
    # A crash between the commit and the trim: the restarted service flushes it again.
    again = flush_segment(warehouse, segment)[1]
    assert events == 2 and all(first.values())
    assert again == {TableName.BRONZE_RECORDS: None, TableName.BRONZE_OUTCOMES: None}
    assert warehouse.info(TableName.BRONZE_RECORDS).rows == 1
    assert warehouse.info(TableName.BRONZE_OUTCOMES).rows == 1
    summary = warehouse.snapshot_summary(TableName.BRONZE_OUTCOMES)
    assert summary[BATCH_KEY] == segment.stem and summary["posttrain.stage"] == "capture"
    (flush,) = capture_flushes(warehouse, TableName.BRONZE_RECORDS)
    assert (flush.batch_id, flush.rows) == (segment.stem, 1)
    sources = warehouse.read(TableName.LINEAGE_SOURCES).to_pylist()
    assert [(s["source"], s["workspace"]) for s in sources] == [("alpha/capture", "alpha")]


def test_rows_read_from_a_segment_keep_every_character_and_value(tmp_path: Path) -> None:
    import orjson

    from posttrain.platform.capture.flusher import segment_tables

    hostile = 'line\nbreak \r "quoted" \\ \u2028 \u0000 é 😀 {"nested": [1]}'
    record = {**_record(hostile, 7), "extra": {"ignored": True}}
    outcome = {
        "k": "o1",
        "t": "o",
        "at": 8,
        "row": {
            "outcome_id": "x1",
            "record_id": "r1",
            "kind": "reward",
            "value": 3,
            "text": hostile,
        },
    }
    segment = _segment(tmp_path, orjson.dumps(record), orjson.dumps(outcome))
    records, outcomes, count = segment_tables(segment)
    assert count == 2
    assert records.column("payload").to_pylist() == [hostile]
    assert records.column("ingested_at").cast("int64").to_pylist() == [7]
    assert outcomes.column("value").to_pylist() == [3.0]
    assert outcomes.column("text").to_pylist() == [hostile]
    assert outcomes.column("source").to_pylist() == [None]
