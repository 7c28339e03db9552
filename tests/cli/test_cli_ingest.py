"""``posttrain ingest``: files, folders and sources YAML into bronze, with a summary table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from posttrain.cli import app, main
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()
CHAT = {
    "conversations": [{"from": "human", "value": "What is 7 × 6?"}, {"from": "gpt", "value": "42"}]
}
QA = {"instruction": "Capital of Peru?", "input": "", "output": "Lima"}


def write(path: Path, *records: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def bronze(home: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        Warehouse(WarehouseSettings.local(home)).read("bronze.records").to_pylist()
    )
    return rows


def test_help_explains_the_command_with_examples() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    for text in (
        "--sources",
        "--source",
        "--workspace",
        "--license",
        "--format",
        "Examples",
        "posttrain ingest --sources data/sources.yaml",
    ):
        assert text in result.output


def test_ingesting_a_file_prints_rows_added_then_nothing_new(tmp_path: Path) -> None:
    path = write(tmp_path / "math_tutor.jsonl", CHAT, CHAT)
    args = ["ingest", str(path), "--license", "CC-BY-4.0", "--home", str(tmp_path / "home")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "math_tutor.jsonl" in first.output and "sharegpt" in first.output
    assert "2 of 2 rows added" in first.output
    second = runner.invoke(app, args)
    assert "Nothing new" in second.output and "0 of 2 rows added" in second.output
    rows = bronze(tmp_path / "home")
    assert {(r["source"], r["license"], r["workspace"]) for r in rows} == {
        ("math_tutor", "CC-BY-4.0", "default")
    }


def test_a_folder_ingests_each_input_file(tmp_path: Path) -> None:
    write(tmp_path / "in" / "b.jsonl", QA)
    write(tmp_path / "in" / "a.jsonl", CHAT)
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "in"), "--source", "mixed", "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.index("a.jsonl") < result.output.index("b.jsonl")
    assert {r["format"] for r in bronze(tmp_path / "home")} == {"sharegpt", "alpaca"}


def test_a_sources_file_ingests_every_entry(tmp_path: Path) -> None:
    write(tmp_path / "qa.jsonl", QA)
    write(tmp_path / "chat.jsonl", CHAT)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - {{path: {tmp_path / 'qa.jsonl'}, source: qa, format: alpaca}}\n"
        f"  - {{path: {tmp_path / 'chat.jsonl'}, source: chat, workspace: edu}}\n"
    )
    result = runner.invoke(
        app, ["ingest", "--sources", str(sources), "--home", str(tmp_path / "home")]
    )
    assert result.exit_code == 0, result.output
    assert {(r["source"], r["workspace"]) for r in bronze(tmp_path / "home")} == {
        ("qa", "default"),
        ("chat", "edu"),
    }


def test_format_option_overrides_detection(tmp_path: Path) -> None:
    both = {**QA, "prompt": "Capital of Peru?", "completion": "Lima"}
    path = write(tmp_path / "qa.jsonl", both)
    result = runner.invoke(
        app, ["ingest", str(path), "--format", "prompt_completion", "--home", str(tmp_path / "h")]
    )
    assert result.exit_code == 0, result.output
    assert bronze(tmp_path / "h")[0]["format"] == "prompt_completion"


def test_unknown_format_value_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(write(tmp_path / "a.jsonl", QA)), "--format", "csv"])
    assert result.exit_code == 2


def test_a_bad_file_raises_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.jsonl", {"text": "hello"})
    result = runner.invoke(app, ["ingest", str(path), "--home", str(tmp_path / "home")])
    assert isinstance(result.exception, InputFormatError)
    assert str(result.exception).startswith(
        f"{path}, line 1: expected records in a known chat format"
    )


@pytest.mark.parametrize(
    "extra",
    [[], ["PATH", "--sources", "s.yaml"], ["--sources", "s.yaml", "--source", "x"]],
    ids=["neither", "both", "per-entry-option"],
)
def test_conflicting_or_missing_inputs_are_config_errors(tmp_path: Path, extra: list[str]) -> None:
    args = [str(tmp_path / "a.jsonl") if a == "PATH" else a for a in extra]
    result = runner.invoke(app, ["ingest", *args, "--home", str(tmp_path / "home")])
    assert isinstance(result.exception, ConfigError)


def test_a_bad_sources_file_fails_before_anything_is_written(tmp_path: Path) -> None:
    write(tmp_path / "qa.jsonl", QA)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - {{path: {tmp_path / 'qa.jsonl'}, source: qa, format: csv}}\n"
    )
    result = runner.invoke(
        app, ["ingest", "--sources", str(sources), "--home", str(tmp_path / "h")]
    )
    assert isinstance(result.exception, ConfigError)
    assert "entry 1 (source 'qa'): format:" in str(result.exception)
    assert not (tmp_path / "h").exists()


def test_main_prints_one_red_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "broken.jsonl", "not json", "[1,")
    monkeypatch.setattr(
        sys, "argv", ["posttrain", "ingest", str(path), "--home", str(tmp_path / "h")]
    )
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    expected = (
        f"error: {path}, line 1: expected JSON Lines (one JSON object per line), "
        "found Expecting value at char 0: 'not json'"
    )
    # rich wraps long lines at the terminal width; the message is one line before wrapping.
    assert "".join(capsys.readouterr().err.split()) == "".join(expected.split())


def test_a_folder_ingest_prints_the_files_it_skipped_and_why(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    write(folder / "qa.jsonl", QA)
    (folder / "README.md").write_text("# notes")
    result = runner.invoke(app, ["ingest", str(folder), "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Skipped 1 file(s):" in text
    assert f"{folder / 'README.md'}: not an input file" in text


def test_sources_set_corrects_a_license_that_sources_list_shows(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "h")]
    path = write(tmp_path / "qa.jsonl", QA)
    assert runner.invoke(app, ["ingest", str(path), "--license", "MIT", *home]).exit_code == 0
    fixed = runner.invoke(app, ["sources", "set", "qa", "--license", "CC-BY-4.0", *home])
    assert fixed.exit_code == 0, fixed.output
    listed = runner.invoke(app, ["sources", "list", *home])
    assert "CC-BY-4.0" in listed.output and "MIT" not in listed.output


def test_a_line_inserted_at_the_top_of_a_sample_adds_only_that_line(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "math_tutor.jsonl"
    path = tmp_path / "math_tutor.jsonl"
    path.write_bytes(sample.read_bytes())
    args = ["ingest", str(path), "--home", str(tmp_path / "h")]
    assert runner.invoke(app, args).exit_code == 0
    path.write_bytes(json.dumps(CHAT).encode() + b"\n" + sample.read_bytes())
    second = runner.invoke(app, args)
    assert "1 of 667 rows added" in second.output
