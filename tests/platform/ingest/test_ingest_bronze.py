"""Appending to bronze.records: provenance on every row, once per record, checks before writes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from posttrain.platform.checks import schema_matches
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import CONFIG_HASH_KEY, STAGE_KEY
from posttrain.platform.progress import ProgressUpdate
from posttrain.platform.schemas import BRONZE_RECORDS
from posttrain.platform.warehouse import Warehouse

Records = dict[ChatFormat, dict[str, Any]]
WriteJsonl = Callable[..., Path]


def spec(path: Path, source: str = "tutor", **kwargs: Any) -> SourceSpec:
    return SourceSpec(path=path, source=source, **kwargs)


def bronze(warehouse: Warehouse) -> list[dict[str, Any]]:
    return sorted(
        warehouse.read("bronze.records").to_pylist(), key=lambda r: (r["source"], r["row_index"])
    )


def test_every_row_keeps_its_payload_and_provenance(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT], "", '{"broken'])
    before = datetime.now(UTC)
    report = ingest(warehouse, [spec(path, workspace="edu", license="CC-BY-4.0")])
    rows = bronze(warehouse)
    assert [(r["row_index"], r["payload"]) for r in rows] == [
        (1, path.read_text().splitlines()[0]),
        (3, '{"broken'),
    ]
    assert {
        (r["source"], r["source_uri"], r["workspace"], r["license"], r["format"], r["batch_id"])
        for r in rows
    } == {("tutor", path.as_uri(), "edu", "CC-BY-4.0", "sharegpt", report.batch_id)}
    assert all(before - timedelta(seconds=1) <= r["ingested_at"] <= datetime.now(UTC) for r in rows)


def test_a_relative_path_gets_an_absolute_source_uri(
    warehouse: Warehouse,
    write_jsonl: WriteJsonl,
    chat_records: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]])
    monkeypatch.chdir(path.parent)
    ingest(warehouse, [spec(Path("tutor.jsonl"))])
    assert bronze(warehouse)[0]["source_uri"] == path.as_uri()


def test_record_id_is_the_documented_hash(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    record = chat_records[ChatFormat.SHAREGPT]
    path = write_jsonl("tutor.jsonl", [chat_records[ChatFormat.ALPACA], record, record])
    ingest(warehouse, [spec(path)])
    rows = bronze(warehouse)[1:]

    def expected(occurrence: int, payload: str) -> str:
        text = f"tutor\0tutor.jsonl\0{payload}\0{occurrence}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    assert [r["record_id"] for r in rows] == [expected(1, r["payload"]) for r in rows[:1]] + [
        expected(2, rows[1]["payload"])
    ]


def test_a_line_inserted_at_the_top_adds_only_that_line(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    records = [{**chat_records[ChatFormat.ALPACA], "output": str(n)} for n in range(5)]
    ingest(warehouse, [spec(write_jsonl("qa.jsonl", records))])
    new = {**records[0], "output": "new"}
    report = ingest(warehouse, [spec(write_jsonl("qa.jsonl", [new, *records]))])
    assert (report.rows_read, report.rows_added) == (6, 1)
    assert len(bronze(warehouse)) == 6


def test_identical_lines_of_one_file_stay_separate_rows(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]] * 3)
    report = ingest(warehouse, [spec(path)])
    assert report.rows_added == 3
    assert len({r["record_id"] for r in bronze(warehouse)}) == 3


def test_the_same_record_in_two_files_of_a_folder_stays_two_rows(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    a = write_jsonl("a.jsonl", [chat_records[ChatFormat.ALPACA]])
    write_jsonl("b.jsonl", [chat_records[ChatFormat.ALPACA]])
    report = ingest(warehouse, [spec(a.parent)])
    assert report.rows_added == 2
    assert len({r["record_id"] for r in bronze(warehouse)}) == 2


def test_reingesting_the_same_file_adds_nothing(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("tutor.jsonl", [chat_records[ChatFormat.SHAREGPT]] * 3)
    first = ingest(warehouse, [spec(path)])
    second = ingest(warehouse, [spec(path)])
    assert (first.rows_added, second.rows_read, second.rows_added) == (3, 3, 0)
    assert second.files[0].already_present == 3
    assert second.snapshot_id == first.snapshot_id
    assert len(bronze(warehouse)) == 3


def test_a_file_that_grew_adds_only_its_new_lines(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    record = chat_records[ChatFormat.ALPACA]
    ingest(warehouse, [spec(write_jsonl("qa.jsonl", [record] * 2))])
    report = ingest(warehouse, [spec(write_jsonl("qa.jsonl", [record] * 3))])
    assert (report.rows_read, report.rows_added) == (3, 1)
    assert [r["row_index"] for r in bronze(warehouse)] == [1, 2, 3]


def test_the_same_record_from_two_sources_stays_two_rows(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]])
    report = ingest(warehouse, [spec(path, "first"), spec(path.parent, "second")])
    rows = bronze(warehouse)
    assert report.rows_added == 2
    assert rows[0]["payload"] == rows[1]["payload"] and rows[0]["record_id"] != rows[1]["record_id"]


def test_batch_id_follows_file_contents_unless_given(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]])
    first = ingest(warehouse, [spec(path)])
    assert ingest(warehouse, [spec(path)]).batch_id == first.batch_id
    changed = ingest(
        warehouse, [spec(write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]] * 2))]
    )
    assert changed.batch_id != first.batch_id
    assert bronze(warehouse)[1]["batch_id"] == changed.batch_id
    assert ingest(warehouse, [spec(path)], batch_id="backfill-7").batch_id == "backfill-7"


def test_parquet_rows_are_ingested_as_canonical_json(
    warehouse: Warehouse, write_parquet: Callable[..., Path], chat_records: Records
) -> None:
    path = write_parquet("agents.parquet", [chat_records[ChatFormat.OPENAI]] * 2)
    report = ingest(warehouse, [spec(path, "agents")])
    assert report.files[0].format is ChatFormat.OPENAI
    rows = bronze(warehouse)
    assert [r["row_index"] for r in rows] == [1, 2]
    # A Parquet struct has every field in every row: absent ones arrive as null.
    assert rows[0]["payload"].startswith(
        '{"messages":[{"content":"You are terse.","role":"system","tool_call_id":null,'
    )


def test_a_bad_file_stops_the_call_before_anything_is_written(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    good = write_jsonl("good.jsonl", [chat_records[ChatFormat.ALPACA]])
    bad = write_jsonl("bad.jsonl", [{"text": "no chat here"}])
    with pytest.raises(
        InputFormatError, match=r"bad\.jsonl, line 1: expected records in a known chat format"
    ):
        ingest(warehouse, [spec(good, "good"), spec(bad, "bad")])
    assert not warehouse.exists("bronze.records")


def test_two_specs_with_one_source_name_are_refused(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    a = write_jsonl("a.jsonl", [chat_records[ChatFormat.ALPACA]])
    b = write_jsonl("b.jsonl", [chat_records[ChatFormat.ALPACA]])
    with pytest.raises(ConfigError, match="source 'qa' is already used"):
        ingest(warehouse, [spec(a, "qa"), spec(b, "qa")])


def test_an_empty_folder_is_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="empty: expected a folder holding"):
        ingest(warehouse, [spec(tmp_path / "empty")])


def test_the_snapshot_records_stage_and_config_hash(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    ingest(warehouse, [spec(write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]]))])
    summary = warehouse.snapshot_summary("bronze.records")
    assert summary[STAGE_KEY] == "ingest"
    assert len(summary[CONFIG_HASH_KEY]) == 16


@dataclass
class RecordingSink:
    finished: list[ProgressUpdate] = field(default_factory=list)

    def update(self, progress: ProgressUpdate) -> None:
        pass

    def finish(self, progress: ProgressUpdate) -> None:
        self.finished.append(progress)


def test_progress_is_reported_per_file(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]] * 3)
    sink = RecordingSink()
    ingest(warehouse, [spec(path)], progress=sink)
    assert [(u.stage, u.rows_done) for u in sink.finished] == [("ingest qa.jsonl", 3)]


def test_large_inputs_commit_in_several_appends(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]] * 5)
    ingest(warehouse, [spec(path)], batch_rows=2, commit_rows=2)
    snapshots = list(warehouse.table("bronze.records").snapshots())
    assert len(snapshots) == 3
    assert len(bronze(warehouse)) == 5


def test_a_bronze_table_of_an_older_schema_is_upgraded_on_ingest(
    warehouse: Warehouse, write_jsonl: WriteJsonl, chat_records: Records
) -> None:
    old = pa.schema(
        [
            f.with_nullable(False) if f.name == "payload" else f
            for f in BRONZE_RECORDS
            if f.name not in ("payload_bytes", "split")
        ]
    )
    warehouse.catalog.create_namespace("bronze")
    warehouse.catalog.create_table("bronze.records", schema=old)
    path = write_jsonl("qa.jsonl", [chat_records[ChatFormat.ALPACA]])
    path.write_bytes(path.read_bytes() + b'{"instruction": "\xff"}\n')
    assert ingest(warehouse, [spec(path)]).rows_added == 2
    assert schema_matches(warehouse, "bronze.records").passed
    assert [r["payload_bytes"] for r in bronze(warehouse)] == [None, b'{"instruction": "\xff"}']
