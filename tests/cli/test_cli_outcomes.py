"""``posttrain outcomes ingest|cut`` and ``posttrain snapshot`` from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from outcomes_data import T0, add_conversations

from posttrain.cli import run
from posttrain.platform.outcomes.labeled import LABELED
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    add_conversations(warehouse, ["r1", "r2"], ingested_at=T0 - timedelta(days=2), source="agent")
    return home


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_ingest_reports_each_bad_line_by_file_and_line_and_exits_1(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path / "o.jsonl",
        [
            {"record_id": "r1", "kind": "reward", "value": 1.0},
            {"record_id": "r2", "kind": "vibes", "value": 1.0},
        ],
    )

    status = run(["outcomes", "ingest", str(path), "--home", str(home)])

    out = capsys.readouterr().out
    assert status == 1
    assert "2 read, 1 added, 0 already present, 1 rejected" in out
    assert f"rejected {path}, line 2: expected 'kind' one of" in out


def test_ingest_of_a_file_that_is_not_what_it_claims_writes_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "o.parquet"
    path.write_text("not parquet", encoding="utf-8")

    status = run(["outcomes", "ingest", str(path), "--home", str(home)])

    assert status == 2 and "o.parquet" in capsys.readouterr().err
    assert not Warehouse(WarehouseSettings.local(home)).exists("bronze.outcomes")


def test_cut_then_snapshot_freezes_the_filtered_rows(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path / "o.jsonl",
        [
            {"record_id": "r1", "kind": "reward", "value": 1.0},
            {"record_id": "r2", "kind": "reward", "value": -1.0},
        ],
    )
    assert run(["outcomes", "ingest", str(path), "--home", str(home)]) == 0
    assert run(["outcomes", "cut", "--window-hours", "0", "--home", str(home)]) == 0

    status = run(
        [
            "snapshot",
            LABELED,
            "--filter",
            "reward > 0 and source = 'agent'",
            "--as",
            "agent-pos",
            "--home",
            str(home),
        ]
    )

    out = capsys.readouterr().out
    assert status == 0 and "froze 1 rows of silver.labeled@" in out and "tag agent-pos" in out
    warehouse = Warehouse(WarehouseSettings.local(home))
    assert warehouse.read("snapshots.agent_pos")["record_id"].to_pylist() == ["r1"]


def test_a_bad_filter_is_one_error_line_showing_where(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "o.jsonl", [{"record_id": "r1", "kind": "reward", "value": 1.0}])
    run(["outcomes", "ingest", str(path), "--home", str(home)])
    run(["outcomes", "cut", "--window-hours", "0", "--home", str(home)])
    capsys.readouterr()

    status = run(["snapshot", LABELED, "--filter", "reward >", "--as", "x", "--home", str(home)])

    err = capsys.readouterr().err
    assert status == 2
    assert "--filter 'reward >': cannot parse at column" in " ".join(err.split())


def test_the_shipped_bad_lines_sample_lands_its_good_lines(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = REPO_ROOT / "data" / "outcomes" / "bad_lines.jsonl"

    status = run(["outcomes", "ingest", str(sample), "--home", str(home)])

    out = capsys.readouterr().out
    assert status == 1 and "6 read, 3 added, 0 already present, 3 rejected" in out
    assert "line 2: expected JSON" in out
