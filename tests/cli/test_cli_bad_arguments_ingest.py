"""Every bad argument to ``ingest``, ``dedup``, ``decontam`` and ``sources`` is one red line
and exit status 2, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posttrain.cli import main
from posttrain.cli._app import err_console

QA = {"instruction": "Capital of Peru?", "output": "Lima"}
CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"}]}


def make_inputs(root: Path) -> None:
    """A small set of good and bad files under ``root``."""
    (root / "qa.jsonl").write_text(json.dumps(QA) + "\n")
    (root / "empty_folder").mkdir()
    (root / "utf16.jsonl").write_bytes((json.dumps(QA) + "\n").encode("utf-16"))
    (root / "chats.csv").write_text("prompt,completion\n")
    mixed = [{"id": "a", "text": "one"}, {"id": "b", "text": 2}, {"id": "a", "text": "three"}]
    (root / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mixed))
    nested = [{"id": "a", "meta": {"k": 1}, **CHAT}, {"id": "b", "meta": {"k": 2}, **CHAT}]
    (root / "nested.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nested))
    pq.write_table(pa.table({"id": ["x", "x"], "text": ["a b c", "d e f"]}), root / "ids.parquet")


Args = Callable[[Path], list[str]]
CASES: dict[str, Args] = {
    "ingest a missing file": lambda d: ["ingest", str(d / "nope.jsonl")],
    "ingest a mistyped folder": lambda d: ["ingest", str(d / "empty_foldr")],
    "ingest a folder without inputs": lambda d: ["ingest", str(d / "empty_folder")],
    "ingest a UTF-16 file": lambda d: ["ingest", str(d / "utf16.jsonl")],
    "ingest an unknown extension": lambda d: ["ingest", str(d / "chats.csv")],
    "ingest a bad source name": lambda d: ["ingest", str(d / "qa.jsonl"), "--source", "a b"],
    "ingest --sources with --license": lambda d: [
        *("ingest", "--sources", str(d / "s.yaml"), "--license", "MIT")
    ],
    "ingest a missing sources file": lambda d: ["ingest", "--sources", str(d / "s.yaml")],
    "dedup a missing input": lambda d: [
        "dedup",
        str(d / "nope.jsonl"),
        "--out",
        str(d / "o.jsonl"),
    ],
    "dedup a folder": lambda d: ["dedup", str(d / "empty_folder"), "--out", str(d / "o.jsonl")],
    "dedup --out equal to the input": lambda d: [
        *("dedup", str(d / "qa.jsonl"), "--out", str(d / "qa.jsonl"), "--text-column", "output")
    ],
    "dedup --out of an unknown kind": lambda d: [
        *("dedup", str(d / "qa.jsonl"), "--out", str(d / "out.txt"))
    ],
    "dedup a text column of mixed types": lambda d: [
        *("dedup", str(d / "mixed.jsonl"), "--out", str(d / "o.jsonl"), "--text-column", "text")
    ],
    "dedup a text column of nested values": lambda d: [
        *("dedup", str(d / "nested.jsonl"), "--out", str(d / "o.jsonl"), "--text-column", "meta")
    ],
    "dedup repeated ids": lambda d: [
        *("dedup", str(d / "ids.parquet"), "--out", str(d / "o.jsonl"), "--id-column", "id")
    ],
    "dedup a missing id column": lambda d: [
        *("dedup", str(d / "ids.parquet"), "--out", str(d / "o.jsonl"), "--id-column", "key")
    ],
    "dedup a missing text column": lambda d: [
        *("dedup", str(d / "ids.parquet"), "--out", str(d / "o.jsonl"), "--text-column", "body")
    ],
    "decontam a missing input": lambda d: [
        *("decontam", str(d / "nope.jsonl"), "--against", "humaneval")
    ],
    "decontam --out equal to the input": lambda d: [
        *("decontam", str(d / "nested.jsonl"), "--against", "humaneval"),
        *("--out", str(d / "nested.jsonl")),
    ],
    "decontam a text column of mixed types": lambda d: [
        *("decontam", str(d / "mixed.jsonl"), "--against", "humaneval", "--text-column", "text")
    ],
    "decontam a text column of nested values": lambda d: [
        *("decontam", str(d / "nested.jsonl"), "--against", "humaneval", "--text-column", "meta")
    ],
    "decontam an unknown benchmark": lambda d: [
        *("decontam", str(d / "qa.jsonl"), "--against", "eval.nope", "--home", str(d / "h"))
    ],
    "sources set an unknown source": lambda d: [
        *("sources", "set", "nope", "--license", "MIT", "--home", str(d / "h"))
    ],
    "sources set without a change": lambda d: ["sources", "set", "qa", "--home", str(d / "h")],
}


@pytest.mark.parametrize("build", CASES.values(), ids=CASES.keys())
def test_a_bad_argument_is_one_red_line_and_exit_2(
    build: Args,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_inputs(tmp_path)
    monkeypatch.setattr(sys, "argv", ["posttrain", *build(tmp_path)])
    monkeypatch.setattr(err_console, "width", 10_000)  # so a long message is one line
    with pytest.raises(SystemExit) as caught:
        main()
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert caught.value.code == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
