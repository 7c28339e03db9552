"""`posttrain export` on a small real warehouse, and its one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from posttrain.cli import app, main
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    rows = [
        {
            "record_id": "r1",
            "messages": [make_message("user", "hi"), make_message("assistant", "yo")],
        }
    ]
    Warehouse(WarehouseSettings.local(tmp_path / "home")).append(
        TableName.GOLD_SFT, pa.Table.from_pylist(rows, schema=GOLD_SFT), Lineage("gold")
    )
    return tmp_path / "home"


def test_export_writes_the_data_file_and_manifest(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", "gold.sft", "--format", "jsonl", "--out", str(out), "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["rows"] == 1
    [line] = (out / "train-00000-of-00001.jsonl").read_text().splitlines()
    assert json.loads(line)["messages"][1]["content"] == "yo"
    assert "exported gold.sft@" in result.output


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["posttrain", *argv])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("gold.nope", "error: no table named 'gold.nope'; tables in the warehouse: gold.sft"),
        ("gold.sft@123", "error: gold.sft@123: no snapshot id, tag or branch by that name"),
    ],
)
def test_a_bad_reference_is_one_line_and_exit_2(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table: str,
    expected: str,
) -> None:
    _main(["export", table, "--out", str(tmp_path / "out"), "--home", str(home)], monkeypatch)
    err = capsys.readouterr().err
    # rich wraps long lines at the terminal width; the message is one line before wrapping.
    assert " ".join(err.split()).startswith(expected)
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_one_line_and_exit_2(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").write_text("keep me")
    _main(["export", "gold.sft", "--out", str(tmp_path / "out"), "--home", str(home)], monkeypatch)
    err = " ".join(capsys.readouterr().err.split())
    assert err == " ".join(
        f"error: --out {tmp_path / 'out'}: is a file; expected a folder (new or empty)".split()
    )
    assert (tmp_path / "out").read_text() == "keep me"
