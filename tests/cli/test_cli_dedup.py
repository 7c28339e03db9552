"""``posttrain dedup``: the standalone dedup command on Parquet and JSONL files."""

from __future__ import annotations

import inspect
import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.errors import ConfigError, InputFormatError

runner = CliRunner()
POPEN = inspect.getdoc(subprocess.Popen) or ""
RUN = inspect.getdoc(subprocess.run) or ""


def _invoke(*args: str | Path) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["dedup", *map(str, args)])
    assert result.exit_code == 0, result.output
    out = Path(str(args[args.index("--out") + 1]))
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines()]
    rows: list[dict[str, Any]] = pq.read_table(out).to_pylist()
    return rows


def test_parquet_rows_get_cluster_keep_and_match_in_input_order(tmp_path: Path) -> None:
    texts = [RUN, POPEN, "  " + POPEN.upper(), POPEN.replace("process", "proces", 2)]
    pq.write_table(pa.table({"text": texts, "n": [1, 2, 3, 4]}), tmp_path / "in.parquet")
    rows = _invoke(tmp_path / "in.parquet", "--out", tmp_path / "out.parquet")
    assert [row["n"] for row in rows] == [1, 2, 3, 4]
    assert [row["keep"] for row in rows] == [True, True, False, False]
    assert [row["matched_id"] for row in rows] == [None, None, "row-000002", "row-000002"]
    assert [row["reason"] for row in rows] == [None, None, "exact_dup", "near_dup"]
    assert rows[2]["similarity"] == 1.0 and 0.7 <= rows[3]["similarity"] < 1.0
    assert {row["cluster_id"] for row in rows[1:]} == {"row-000002"}


def test_jsonl_conversations_deduplicated_on_the_prompt(tmp_path: Path) -> None:
    chats = [
        {
            "id": f"c{n}",
            "messages": [
                {"role": "user", "content": POPEN},
                {"role": "assistant", "content": answer},
            ],
        }
        for n, answer in enumerate(["Use run().", RUN])
    ]
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(chat) + "\n" for chat in chats))
    by_prompt = _invoke(
        tmp_path / "chats.jsonl",
        "--text-view",
        "prompt",
        "--id-column",
        "id",
        "--out",
        tmp_path / "prompt.jsonl",
    )
    everything = _invoke(
        tmp_path / "chats.jsonl", "--id-column", "id", "--out", tmp_path / "all.jsonl"
    )
    assert [row["keep"] for row in by_prompt] == [True, False]
    assert by_prompt[1]["matched_id"] == "c0"
    assert [row["keep"] for row in everything] == [True, True]


def test_the_smallest_id_is_kept(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"record_id": ["z", "a"], "text": [POPEN, POPEN]}), tmp_path / "in.parquet"
    )
    rows = _invoke(tmp_path / "in.parquet", "--out", tmp_path / "out.parquet")
    assert [(row["record_id"], row["keep"]) for row in rows] == [("z", False), ("a", True)]


def test_drop_whole_cluster_keeps_no_member(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": [POPEN, POPEN, RUN]}), tmp_path / "in.parquet")
    rows = _invoke(
        tmp_path / "in.parquet", "--drop-whole-cluster", "--out", tmp_path / "out.parquet"
    )
    assert [row["keep"] for row in rows] == [False, False, True]


def test_a_missing_text_column_names_the_file_and_the_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "in.parquet")
    result = runner.invoke(
        app, ["dedup", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "o.parquet")]
    )
    assert isinstance(result.exception, InputFormatError)
    assert "in.parquet" in str(result.exception) and "'body'" in str(result.exception)


def test_bands_that_do_not_divide_num_perm_are_refused_before_reading(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "dedup",
            str(tmp_path / "missing.parquet"),
            "--num-perm",
            "128",
            "--bands",
            "30",
            "--out",
            str(tmp_path / "o.parquet"),
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "must divide num_perm" in str(result.exception)


def test_help_explains_threshold_and_defaults() -> None:
    result = runner.invoke(app, ["dedup", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "estimated Jaccard similarity" in result.output
    assert "At the default 0.7" in result.output and "[default: 128]" in result.output


def test_garbage_collection_is_on_again_after_the_command_succeeds_or_fails(
    tmp_path: Path,
) -> None:
    import gc

    pq.write_table(pa.table({"text": [RUN, POPEN]}), tmp_path / "in.parquet")
    _invoke(tmp_path / "in.parquet", "--out", tmp_path / "out.parquet")
    assert gc.isenabled()
    failed = runner.invoke(app, ["dedup", str(tmp_path / "no.parquet"), "--out", "o.parquet"])
    assert failed.exit_code != 0
    assert gc.isenabled()
