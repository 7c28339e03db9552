"""The inputs users have: compressed JSONL, JSON arrays, Hugging Face datasets folders, bytes
that are not UTF-8, and UTF-16 files; a folder ingest lists what it skipped."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import canonical_json, inspect_file, iter_raw_batches
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.warehouse import Warehouse

Records = dict[ChatFormat, dict[str, Any]]
QA = [{"instruction": f"Question {n}?", "output": f"Answer {n}."} for n in range(3)]


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def raw_rows(path: Path) -> list[dict[str, Any]]:
    return [row for batch in iter_raw_batches(path, batch_rows=2) for row in batch.to_pylist()]


def bronze(warehouse: Warehouse) -> list[dict[str, Any]]:
    rows = warehouse.read("bronze.records").to_pylist()
    return sorted(rows, key=lambda r: (r["split"] or "", r["source_uri"], r["row_index"]))


@pytest.mark.parametrize(
    ("name", "compress"),
    [("qa.jsonl.gz", gzip.compress), ("qa.jsonl.zst", zstandard.ZstdCompressor().compress)],
)
def test_compressed_jsonl_reads_like_plain_jsonl(
    tmp_path: Path, name: str, compress: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / name
    path.write_bytes(compress(jsonl_bytes(QA)))
    assert inspect_file(path).format is ChatFormat.ALPACA
    assert [(r["row_index"], r["payload"]) for r in raw_rows(path)] == [
        (n + 1, json.dumps(record)) for n, record in enumerate(QA)
    ]


def test_a_truncated_gzip_file_fails_before_anything_is_written(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "qa.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_bytes(QA * 200))[:-40])
    with pytest.raises(InputFormatError, match=r"qa\.jsonl\.gz: expected a readable \.gz"):
        ingest(warehouse, [SourceSpec(path=path, source="qa")])
    assert not warehouse.exists("bronze.records")


def test_json_array_elements_are_records_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(QA, indent=2, ensure_ascii=False))
    rows = raw_rows(path)
    assert [r["row_index"] for r in rows] == [1, 2, 3]
    assert [r["payload"] for r in rows] == [
        json.dumps(r, indent=2).replace("\n", "\n  ") for r in QA
    ]
    assert inspect_file(path).format is ChatFormat.ALPACA


def test_a_json_file_of_json_lines_is_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_bytes(jsonl_bytes(QA))
    assert [r["payload"] for r in raw_rows(path)] == [json.dumps(r) for r in QA]


def test_a_broken_json_array_names_the_element_and_writes_nothing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(QA * 50)[:-30] + ', {"instruction": oops}]')
    with pytest.raises(InputFormatError, match=r"qa\.json, element 150: expected a JSON array"):
        ingest(warehouse, [SourceSpec(path=path, source="qa")])
    assert not warehouse.exists("bronze.records")


def write_save_to_disk(root: Path, splits: dict[str, list[dict[str, Any]]]) -> Path:
    """The layout ``DatasetDict.save_to_disk`` writes: one folder per split, Arrow streams."""
    for split, rows in splits.items():
        folder = root / split
        folder.mkdir(parents=True)
        table = pa.Table.from_pylist(rows)
        with pa.ipc.new_stream(folder / "data-00000-of-00001.arrow", table.schema) as stream:
            stream.write_table(table)
        files = [{"filename": "data-00000-of-00001.arrow"}]
        (folder / "state.json").write_text(json.dumps({"_split": split, "_data_files": files}))
        (folder / "dataset_info.json").write_text("{}")
    (root / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    return root


def test_a_save_to_disk_folder_keeps_each_split_as_a_column(
    warehouse: Warehouse, tmp_path: Path, chat_records: Records
) -> None:
    chat = chat_records[ChatFormat.OPENAI]
    root = write_save_to_disk(tmp_path / "ds", {"train": [chat, chat], "test": [chat]})
    report = ingest(warehouse, [SourceSpec(path=root, source="ds")])
    rows = bronze(warehouse)
    assert [(r["split"], r["row_index"]) for r in rows] == [("test", 1), ("train", 1), ("train", 2)]
    # The same record in two splits (files of the same name) stays two rows.
    assert report.rows_added == 3 and len({r["record_id"] for r in rows}) == 3
    assert {r["format"] for r in rows} == {"openai"}
    assert rows[0]["payload"] == canonical_json(pa.Table.from_pylist([chat]).to_pylist()[0])
    assert {s.path.name for s in report.skipped} == {
        "dataset_dict.json",
        "state.json",
        "dataset_info.json",
    }


def test_a_saved_dataset_keeps_its_split_and_skips_cache_files(
    warehouse: Warehouse, tmp_path: Path, chat_records: Records
) -> None:
    chat = chat_records[ChatFormat.OPENAI]
    folder = write_save_to_disk(tmp_path / "ds", {"validation": [chat]}) / "validation"
    (folder / "cache-0a1b2c.arrow").write_bytes((folder / "data-00000-of-00001.arrow").read_bytes())
    report = ingest(warehouse, [SourceSpec(path=folder, source="ds")])
    assert [(f.name, f.split, f.rows_added) for f in report.files] == [
        ("data-00000-of-00001.arrow", "validation", 1)
    ]
    assert "cache-0a1b2c.arrow" in {s.path.name for s in report.skipped}


def test_the_hub_layout_is_searched_recursively_with_splits(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    data = tmp_path / "repo" / "default" / "data"
    data.mkdir(parents=True)
    for split in ("train", "validation"):
        pq.write_table(pa.Table.from_pylist(QA[:2]), data / f"{split}-00000-of-00001.parquet")
    (tmp_path / "repo" / "README.md").write_text("# dataset card")
    report = ingest(warehouse, [SourceSpec(path=tmp_path / "repo", source="hub")])
    assert [(f.name, f.split) for f in report.files] == [
        ("default/data/train-00000-of-00001.parquet", "train"),
        ("default/data/validation-00000-of-00001.parquet", "validation"),
    ]
    assert [r["split"] for r in bronze(warehouse)] == ["train"] * 2 + ["validation"] * 2
    assert [(s.path.name, s.reason) for s in report.skipped] == [
        (
            "README.md",
            "not an input file (expected a name ending in one of .jsonl, .ndjson, "
            ".json (each also .gz or .zst), .parquet, .pq, .arrow)",
        )
    ]


def test_a_folder_ingest_lists_the_files_it_skipped_and_why(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    (tmp_path / "in" / ".git").mkdir(parents=True)
    (tmp_path / "in" / "qa.jsonl").write_bytes(jsonl_bytes(QA))
    (tmp_path / "in" / "notes.txt").write_text("todo")
    (tmp_path / "in" / "empty.jsonl").write_text("")
    report = ingest(warehouse, [SourceSpec(path=tmp_path / "in", source="qa")])
    assert report.rows_added == 3
    reasons = {s.path.name: s.reason for s in report.skipped}
    assert reasons[".git"] == "hidden" and reasons["empty.jsonl"] == "empty file"
    assert reasons["notes.txt"].startswith("not an input file")


def test_a_line_that_is_not_utf8_is_kept_as_its_exact_bytes(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    bad = b'{"instruction": "caf\xe9 au lait?", "output": "\xff"}'
    path = tmp_path / "qa.jsonl"
    path.write_bytes(jsonl_bytes(QA[:1]) + bad + b"\n")
    ingest(warehouse, [SourceSpec(path=path, source="qa")])
    rows = bronze(warehouse)
    assert (rows[0]["payload"], rows[0]["payload_bytes"]) == (json.dumps(QA[0]), None)
    assert (rows[1]["payload"], rows[1]["payload_bytes"]) == (None, bad)
    assert "\ufffd" not in json.dumps([r["payload"] for r in rows])


@pytest.mark.parametrize(
    ("encode", "found"),
    [
        (lambda text: text.encode("utf-16"), "UTF-16 (encoding): convert with iconv -f UTF-16 "),
        (lambda text: text.encode("utf-16-le"), "UTF-16LE (encoding): convert with iconv"),
        (lambda text: text.encode("utf-16-be"), "UTF-16BE (encoding)"),
        (lambda text: text.encode("utf-32"), "UTF-32 (encoding)"),
    ],
)
def test_a_utf16_file_fails_before_anything_is_written_saying_encoding(
    warehouse: Warehouse, tmp_path: Path, encode: Callable[[str], bytes], found: str
) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(encode(jsonl_bytes(QA).decode()))
    with pytest.raises(
        InputFormatError, match=r"qa\.jsonl: expected UTF-8 JSON Lines, found "
    ) as e:
        ingest(warehouse, [SourceSpec(path=path, source="qa")])
    assert found in str(e.value)
    assert not warehouse.exists("bronze.records")
