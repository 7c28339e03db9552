"""Reading and writing the files of ``posttrain decontam``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.platform.errors import InputFormatError
from posttrain.platform.schemas import MESSAGES_TYPE
from posttrain.platform.table_files import read_table_file, write_table_file


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
