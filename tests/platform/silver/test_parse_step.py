"""ParseStep: bronze rows in, canonical messages with provenance out, malformed rows refused."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from posttrain.platform.ingest.bronze import PlannedFile, bronze_rows
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import inspect_file, iter_raw_batches
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.silver.parse import PARSED_RECORDS, ParseStep

Records = dict[ChatFormat, dict[str, Any]]


def bronze_batch(path: Path, source: str = "tutor") -> pa.Table:
    spec = SourceSpec(path=path, source=source, workspace="public", license="CC-BY-4.0")
    planned = PlannedFile(spec, inspect_file(path), sha256="0" * 64)
    raw = next(iter_raw_batches(path))
    return bronze_rows(raw, planned, batch_id="b1", ingested_at=datetime(2024, 6, 1, tzinfo=UTC))


def test_kept_rows_carry_messages_and_provenance(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    bronze = bronze_batch(write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]]))
    result = ParseStep()(bronze)
    assert result.kept.schema == PARSED_RECORDS
    row = result.kept.to_pylist()[0]
    assert row["record_id"] == bronze["record_id"][0].as_py()
    assert [m["content"] for m in row["messages"]] == ["What is 7 × 6?", "7 × 6 = 42."]
    assert {k: row[k] for k in ("source", "workspace", "license", "batch_id", "format")} == {
        "source": "tutor",
        "workspace": "public",
        "license": "CC-BY-4.0",
        "batch_id": "b1",
        "format": "sharegpt",
    }
    assert row["source_uri"].startswith("file://") and row["source_uri"].endswith("tutor.jsonl")


def test_malformed_rows_become_rejections_and_nothing_is_lost(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    good = chat_records[ChatFormat.SHAREGPT]
    path = write_jsonl("tutor.jsonl", [good, '{"conversations": [', {"conversation": []}, good])
    bronze = bronze_batch(path)
    result = ParseStep()(bronze)
    assert result.kept.num_rows + result.rejected.num_rows == bronze.num_rows
    assert result.rejected.schema == SILVER_REJECTIONS
    rejected = result.rejected.to_pylist()
    assert [r["record_id"] for r in rejected] == bronze["record_id"].to_pylist()[1:3]
    assert [r["detail"] for r in rejected] == [
        "line is not valid JSON: Expecting value at char 19",
        "sharegpt record has no 'conversations' (keys: 'conversation')",
    ]
    assert {(r["reason"], r["source"], r["batch_id"]) for r in rejected} == {
        ("malformed", "tutor", "b1")
    }


def test_a_row_whose_format_is_unknown_is_malformed(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    bronze = bronze_batch(write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]]))
    bronze = bronze.set_column(
        bronze.schema.get_field_index("format"), "format", pa.array(["yaml"])
    )
    result = ParseStep()(bronze)
    assert result.rejected["detail"].to_pylist() == [
        "bronze format 'yaml' is not one of openai, sharegpt, alpaca, prompt_completion"
    ]


def test_step_survives_pickling_for_ray_and_accepts_record_batches(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    bronze = bronze_batch(write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]] * 3))
    step = pickle.loads(pickle.dumps(ParseStep()))
    assert step(bronze.to_batches()[0]).kept.equals(ParseStep()(bronze).kept)


def test_rejections_name_the_file_and_line_and_kept_rows_keep_the_line(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    good = chat_records[ChatFormat.SHAREGPT]
    bronze = bronze_batch(write_jsonl("tutor.jsonl", [good, "{not json", good]))
    result = ParseStep()(bronze)
    assert result.kept["row_index"].to_pylist() == [1, 3]
    [rejected] = result.rejected.to_pylist()
    assert rejected["row_index"] == 2
    assert rejected["source_uri"].startswith("file://")
    assert rejected["source_uri"].endswith("tutor.jsonl")


def test_a_payload_kept_as_bytes_is_malformed_with_the_offset_of_the_first_bad_byte(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    bronze = bronze_batch(write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]] * 2))
    raw = b'{"conversations": [{"from": "human", "value": "caf\xe9"}]}'
    payload = pa.array([bronze["payload"][0].as_py(), None], pa.string())
    payload_bytes = pa.array([None, raw], pa.binary())
    bronze = bronze.set_column(bronze.schema.get_field_index("payload"), "payload", payload)
    bronze = bronze.set_column(
        bronze.schema.get_field_index("payload_bytes"), "payload_bytes", payload_bytes
    )
    result = ParseStep()(bronze)
    assert result.kept.num_rows == 1
    offset = raw.index(b"\xe9")
    assert result.rejected.select(["reason", "detail", "row_index"]).to_pylist() == [
        {
            "reason": "malformed",
            "detail": f"not valid UTF-8 at byte offset {offset}",
            "row_index": 2,
        }
    ]
