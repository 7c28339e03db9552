"""bronze.outcomes: files and the Python API, bad input rules, exactly once."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.platform.errors import InputFormatError
from posttrain.platform.outcomes.ingest import (
    OUTCOMES_TABLE,
    OutcomeError,
    ingest_outcome_file,
    outcome_id,
    parse_outcome,
    record_outcomes,
)
from posttrain.platform.warehouse import Warehouse

REWARD = {"record_id": "r1", "kind": "reward", "value": 0.5, "source": "grader"}


def _rows(warehouse: Warehouse) -> list[dict[str, object]]:
    return warehouse.read(OUTCOMES_TABLE).sort_by("outcome_id").to_pylist()


def test_api_appends_an_outcome_keyed_by_its_content_hash(warehouse: Warehouse) -> None:
    report = record_outcomes(warehouse, [REWARD])

    (row,) = _rows(warehouse)
    assert report.rows_added == 1
    assert row["outcome_id"] == outcome_id("r1", "reward", 0.5, None, "grader", None)
    assert row["kind"] == "reward" and row["value"] == 0.5 and row["arrived_at"] is not None


def test_a_retried_call_adds_nothing_and_keeps_the_first_arrival(warehouse: Warehouse) -> None:
    record_outcomes(warehouse, [REWARD])
    first = _rows(warehouse)[0]["arrived_at"]

    again = record_outcomes(warehouse, [REWARD, REWARD])

    assert again.rows_added == 0 and again.rows_already_present == 2
    assert [row["arrived_at"] for row in _rows(warehouse)] == [first]


def test_two_processes_sending_the_same_outcomes_at_once_add_them_once(
    warehouse: Warehouse,
) -> None:
    rows = [{"record_id": f"r{i}", "kind": "reward", "value": float(i)} for i in range(20)]
    threads = [threading.Thread(target=record_outcomes, args=(warehouse, rows)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(_rows(warehouse)) == 20


def test_api_refuses_an_invalid_row_before_writing_anything(warehouse: Warehouse) -> None:
    with pytest.raises(InputFormatError, match=r"row 2: expected 'kind' one of"):
        record_outcomes(warehouse, [REWARD, {"record_id": "r2", "kind": "vibes", "value": 1}])

    assert not warehouse.exists(OUTCOMES_TABLE) or _rows(warehouse) == []


def test_a_bad_line_is_a_rejection_naming_file_and_line_and_good_lines_land(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(
        json.dumps(REWARD)
        + "\n{not json\n"
        + json.dumps({"record_id": "r2", "kind": "reward"})
        + "\n"
        + json.dumps({"record_id": "r3", "kind": "feedback", "text": "great"})
        + "\n"
        + json.dumps({"record_id": "r4", "kind": "reward", "value": "high"})
        + "\n",
        encoding="utf-8",
    )

    report = ingest_outcome_file(warehouse, path)

    assert report.rows_read == 5 and report.rows_added == 2
    assert [str(r) for r in report.rejections] == [
        f"{path}, line 2: expected JSON: Expecting property name enclosed in double quotes",
        f"{path}, line 3: expected a 'value' or a 'text', found neither",
        f"{path}, line 5: expected 'value' as a finite number, found 'high'",
    ]
    assert {row["record_id"] for row in _rows(warehouse)} == {"r1", "r3"}


def test_a_file_that_is_not_what_it_claims_fails_before_writing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "outcomes.parquet"
    path.write_text(json.dumps(REWARD) + "\n", encoding="utf-8")

    with pytest.raises(InputFormatError, match=r"outcomes\.parquet"):
        ingest_outcome_file(warehouse, path)

    assert not warehouse.exists(OUTCOMES_TABLE)


def test_parquet_outcomes_land_with_file_and_row(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "outcomes.parquet"
    pq.write_table(pa.Table.from_pylist([REWARD, {**REWARD, "record_id": "r2"}]), path)

    report = ingest_outcome_file(warehouse, path)

    assert report.rows_added == 2 and not report.rejections
    assert sorted(row["row_index"] for row in _rows(warehouse)) == [1, 2]
    assert all(str(row["source_uri"]).endswith("outcomes.parquet") for row in _rows(warehouse))


def test_reingesting_a_file_adds_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(json.dumps(REWARD) + "\n", encoding="utf-8")
    ingest_outcome_file(warehouse, path)

    again = ingest_outcome_file(warehouse, path)

    assert again.rows_added == 0 and len(_rows(warehouse)) == 1


def test_arrival_time_without_a_time_zone_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(InputFormatError, match="with a time zone"):
        record_outcomes(warehouse, [{**REWARD, "arrived_at": "2026-03-01T12:00:00"}])


def test_only_a_preference_outcome_may_name_another_record() -> None:
    now = datetime.now(UTC)
    pairwise = parse_outcome({"record_id": "a", "kind": "preference", "other_record_id": "b"}, now)
    assert (pairwise["other_record_id"], pairwise["value"]) == ("b", None)
    with pytest.raises(OutcomeError, match="only on kind 'preference'"):
        parse_outcome({"record_id": "a", "kind": "reward", "value": 1, "other_record_id": "b"}, now)
