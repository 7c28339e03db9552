"""Streaming raw records from JSONL and Parquet, and refusing files that are not chat data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import canonical_json, inspect_file, iter_raw_batches

Records = dict[ChatFormat, dict[str, Any]]


def raw_records(path: Path, batch_rows: int = 8192) -> list[tuple[int, str]]:
    return [
        (row["row_index"], row["payload"])
        for batch in iter_raw_batches(path, batch_rows=batch_rows)
        for row in batch.to_pylist()
    ]


def test_jsonl_payload_is_the_line_exactly_numbered_by_line(tmp_path: Path) -> None:
    lines = ['{"prompt": "a",  "completion": "b"}', "", '{"prompt":"c","completion":"d"}']
    path = tmp_path / "pc.jsonl"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    assert raw_records(path) == [(1, lines[0]), (3, lines[2])]


def test_utf8_byte_order_mark_is_not_part_of_the_first_payload(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"prompt": "a", "completion": "b"}\n')
    assert raw_records(path) == [(1, '{"prompt": "a", "completion": "b"}')]


def test_an_undecodable_line_in_a_good_file_is_kept_as_received(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    good = chat_records[ChatFormat.ALPACA]
    path = write_jsonl("mixed.jsonl", [good, '{"instruction": "cut off', good])
    assert inspect_file(path).format is ChatFormat.ALPACA
    assert raw_records(path)[1] == (2, '{"instruction": "cut off')


def test_batches_hold_at_most_batch_rows_records(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    path = write_jsonl("five.jsonl", [chat_records[ChatFormat.SHAREGPT]] * 5)
    sizes = [batch.num_rows for batch in iter_raw_batches(path, batch_rows=2)]
    assert sizes == [2, 2, 1]


def test_parquet_rows_become_canonical_json_numbered_from_one(
    write_parquet: Callable[..., Path],
) -> None:
    rows = [
        {"prompt": "p1", "completion": "c1", "id": 7},
        {"prompt": "p2", "completion": "c2", "id": 8},
    ]
    path = write_parquet("pc.parquet", rows)
    records = raw_records(path, batch_rows=1)
    assert records == [
        (1, '{"completion":"c1","id":7,"prompt":"p1"}'),
        (2, canonical_json(rows[1])),
    ]
    assert json.loads(records[1][1]) == rows[1]


def test_parquet_nested_messages_keep_nulls(tmp_path: Path, chat_records: Records) -> None:
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.Table.from_pylist([chat_records[ChatFormat.OPENAI]]), path)
    messages = json.loads(raw_records(path)[0][1])["messages"]
    assert messages[0]["tool_calls"] is None
    assert messages[2]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_file_format_is_the_majority_of_its_first_records(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    records = [chat_records[ChatFormat.SHAREGPT]] * 3 + [chat_records[ChatFormat.ALPACA]]
    inspection = inspect_file(write_jsonl("math.jsonl", records))
    assert (inspection.format, inspection.detected) == (ChatFormat.SHAREGPT, ChatFormat.SHAREGPT)


def test_format_override_wins_when_some_records_fit_it(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    records = [chat_records[ChatFormat.SHAREGPT]] * 3 + [chat_records[ChatFormat.ALPACA]]
    inspection = inspect_file(write_jsonl("math.jsonl", records), override=ChatFormat.ALPACA)
    assert (inspection.format, inspection.detected) == (ChatFormat.ALPACA, ChatFormat.SHAREGPT)


def test_override_that_fits_no_record_names_file_line_and_keys(
    write_jsonl: Callable[..., Path], chat_records: Records
) -> None:
    path = write_jsonl("chats.jsonl", [chat_records[ChatFormat.OPENAI]])
    with pytest.raises(InputFormatError) as caught:
        inspect_file(path, override=ChatFormat.ALPACA)
    assert str(caught.value) == (
        f"{path}, line 1: expected alpaca ('instruction', 'output') records, as the format "
        "override says, found an object with keys ['messages']"
    )


def test_unknown_extension_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "chats.csv"
    path.write_text("prompt,completion\n")
    with pytest.raises(InputFormatError, match=r"chats\.csv: expected a file ending in one of"):
        inspect_file(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match=r"nope\.jsonl: expected an existing file"):
        inspect_file(tmp_path / "nope.jsonl")


def test_text_file_called_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chats.parquet"
    path.write_text('{"prompt": "a", "completion": "b"}\n')
    with pytest.raises(InputFormatError, match=r"chats\.parquet: expected a Parquet file, found"):
        inspect_file(path)


def test_pretty_printed_json_is_not_jsonl_and_the_error_names_line_one(
    tmp_path: Path, chat_records: Records
) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps([chat_records[ChatFormat.ALPACA]], indent=2))
    with pytest.raises(InputFormatError) as caught:
        inspect_file(path)
    assert caught.value.line == 1
    assert str(caught.value).startswith(
        f"{path}, line 1: expected JSON Lines (one JSON object per line), found Expecting value"
    )


def test_file_without_a_known_chat_format_names_line_and_keys(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl("text.jsonl", ["", {"id": 1, "text": "hi"}])
    with pytest.raises(InputFormatError) as caught:
        inspect_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 2: expected records in a known chat format: openai")
    assert message.endswith("found an object with keys ['id', 'text']")


def test_parquet_without_a_known_chat_format_names_the_row(
    write_parquet: Callable[..., Path],
) -> None:
    path = write_parquet("text.parquet", [{"text": "a"}, {"text": "b"}])
    with pytest.raises(
        InputFormatError, match=r"text\.parquet, row 1: expected records in a known"
    ):
        inspect_file(path)


def test_jsonl_of_non_objects_has_no_chat_format(write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl("lists.jsonl", ['["user", "hi"]', "42"])
    with pytest.raises(InputFormatError, match="found a JSON list, not an object"):
        inspect_file(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(
        InputFormatError, match=r"empty\.jsonl: expected at least one record, found an empty file"
    ):
        inspect_file(path)
