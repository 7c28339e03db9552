"""``posttrain decontam``: the standalone decontamination command."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.errors import ConfigError
from posttrain.platform.evals import load_humaneval, seed_humaneval
from posttrain.platform.warehouse import Warehouse

runner = CliRunner()
PROMPT_12 = load_humaneval().column("prompt")[12].as_py()
CLEAN = "How do I reverse a list in Python without modifying the original one in place?"


def write_chats(path: Path) -> None:
    chats = [
        {
            "id": "a",
            "messages": [
                {"role": "user", "content": CLEAN},
                {"role": "assistant", "content": "Use reversed(xs)."},
            ],
        },
        {
            "id": "b",
            "messages": [
                {"role": "user", "content": f"Solve:\n{PROMPT_12}"},
                {"role": "assistant", "content": "Done."},
            ],
        },
    ]
    path.write_text("".join(json.dumps(chat) + "\n" for chat in chats))


def test_writes_contaminated_rows_with_evidence(tmp_path: Path) -> None:
    write_chats(tmp_path / "chats.jsonl")
    out = tmp_path / "hits.parquet"
    result = runner.invoke(
        app,
        ["decontam", str(tmp_path / "chats.jsonl"), "--against", "humaneval", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "1 of 2 records (50.00%) contaminated: humaneval 1 (1 items)" in result.output
    rows = pq.read_table(out).to_pylist()
    assert [(r["id"], r["input_row"], r["benchmark_item_id"]) for r in rows] == [
        ("b", 2, "HumanEval/12")
    ]
    assert rows[0]["detail"].startswith("13-gram overlap with humaneval HumanEval/12 (")
    assert rows[0]["messages"][1]["content"] == "Done."


def test_reads_the_eval_table_of_a_warehouse(tmp_path: Path, warehouse: Warehouse) -> None:
    seed_humaneval(warehouse)
    write_chats(tmp_path / "chats.jsonl")
    result = runner.invoke(
        app,
        [
            "decontam",
            str(tmp_path / "chats.jsonl"),
            "--against",
            "eval.humaneval",
            "--home",
            str(tmp_path / "home"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "humaneval 1 (1 items)" in result.output


def test_checks_a_text_column_against_a_file_of_items(tmp_path: Path) -> None:
    items = tmp_path / "tiny_bench.jsonl"
    items.write_text(json.dumps({"id": "T1", "question": CLEAN}) + "\n")
    inputs = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"text": ["unrelated words only", f"Q: {CLEAN}"]}), inputs)
    out = tmp_path / "hits.jsonl"
    result = runner.invoke(
        app,
        [
            "decontam",
            str(inputs),
            "--against",
            str(items),
            "--text-column",
            "text",
            "--ngram",
            "8",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [
        (r["input_row"], r["benchmark"], r["benchmark_item_id"], r["matched_ngrams"]) for r in rows
    ] == [(2, "tiny_bench", "T1", 8)]  # 15 words: 8 8-grams


def test_invalid_settings_fail_before_reading_input(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "decontam",
            str(tmp_path / "missing.jsonl"),
            "--against",
            "humaneval",
            "--min-matches",
            "0",
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "--min-matches: Input should be greater than or equal to 1" in str(result.exception)


def test_unknown_benchmark_names_the_alternatives(tmp_path: Path) -> None:
    write_chats(tmp_path / "chats.jsonl")
    result = runner.invoke(
        app,
        [
            "decontam",
            str(tmp_path / "chats.jsonl"),
            "--against",
            "eval.mbpp",
            "--home",
            str(tmp_path / "home"),
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "no table named 'eval.mbpp'" in str(result.exception)
    assert "shipped benchmark name: humaneval" in str(result.exception)
