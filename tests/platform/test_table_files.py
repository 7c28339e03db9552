"""Reading and writing the files of ``posttrain decontam``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.schemas import MESSAGES_TYPE
from posttrain.platform.table_files import (
    check_text_column,
    read_records,
    read_table_file,
    write_table_file,
)


def test_jsonl_messages_are_conformed_to_the_canonical_type(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "n": 1}) + "\n\n")
    table = read_table_file(path)
    assert table.schema.field("messages").type == MESSAGES_TYPE
    assert table["messages"][0].as_py()[0]["tool_calls"] == []


def test_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text('{"messages": []}\n{"messages": "hello"}\n')
    with pytest.raises(InputFormatError, match=r"chats\.jsonl, line 2: .* found a str instead"):
        read_table_file(path)


def test_parquet_messages_with_fewer_fields_are_conformed(tmp_path: Path) -> None:
    path = tmp_path / "chats.parquet"
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    pq.write_table(
        pa.table({"messages": pa.array([[{"role": "user", "content": "x"}]], pa.list_(message))}),
        path,
    )
    assert read_table_file(path).schema.field("messages").type == MESSAGES_TYPE


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match=r"expected a file ending in one of"):
        read_table_file(tmp_path / "chats.csv")


def test_jsonl_output_round_trips(tmp_path: Path) -> None:
    table = pa.table({"record_id": ["a"], "matched_ngrams": pa.array([3], pa.int32())})
    write_table_file(table, tmp_path / "out" / "hits.jsonl")
    assert read_table_file(tmp_path / "out" / "hits.jsonl").to_pylist() == table.to_pylist()


def test_bad_lines_are_skipped_and_listed_with_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path.write_bytes(
        b"\n".join([good.encode(), b"{oops", b'"text"', b'{"text": "caf\xe9"}', good.encode()])
        + b"\n"
    )
    records = read_records(path)
    assert records.numbers.to_pylist() == [1, 5]
    assert [(bad.line, bad.reason.split(":")[0]) for bad in records.bad_lines] == [
        (2, "Expecting property name enclosed in double quotes"),
        (3, "a JSON str, not an object"),
        (4, "not UTF-8 (invalid byte at offset 13)"),
    ]
    summary = records.skipped_summary(shown=2)
    assert summary is not None and summary.startswith(f"skipped 3 bad line(s) of {path}: line 2")
    assert summary.endswith("; and 1 more")


def test_a_column_of_mixed_types_is_kept_as_json_text_and_named(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "a"}\n{"text": 2}\n{"text": null}\n')
    records = read_records(path)
    assert records.table["text"].to_pylist() == ['"a"', "2", None]
    assert records.mixed["text"].describe() == "string (line 1), number (line 2)"
    with pytest.raises(InputFormatError, match="expected column 'text' to hold one type"):
        check_text_column(records, "text")


def test_other_chat_formats_get_canonical_messages_beside_the_table(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [{"instruction": "Capital of Peru?", "output": "Lima"}, {"instruction": "x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_records(path)
    assert records.chat_format is ChatFormat.ALPACA
    assert records.messages is not None
    assert [m["role"] for m in records.messages[0].as_py()] == ["user", "assistant"]
    assert records.table.num_rows == 1 and records.bad_lines[0].line == 2
