"""``posttrain doctor``: the way out that a failing blocking check names."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform import checks
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import Lineage
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


def _home_with_duplicate_bronze_rows(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    path = tmp_path / "chats.jsonl"
    path.write_text(
        "".join(
            json.dumps({"instruction": f"Spell {n} in words.", "input": "", "output": str(n)})
            + "\n"
            for n in range(4)
        )
    )
    ingest(warehouse, [SourceSpec(path=path, source="numbers")])
    warehouse.append("bronze.records", warehouse.read("bronze.records"), Lineage("crash"))
    return home


def test_a_failing_uniqueness_check_names_the_command_that_repairs_it(tmp_path: Path) -> None:
    home = _home_with_duplicate_bronze_rows(tmp_path)
    outcome = checks.keys_unique(Warehouse(WarehouseSettings.local(home)), "bronze.records")
    assert not outcome.passed
    assert "`posttrain doctor --repair`" in outcome.description

    result = runner.invoke(app, ["doctor", "--repair", "--home", str(home)])

    assert result.exit_code == 0, result.output
    assert "repaired: bronze.records: removed 4 duplicate rows" in result.output
    assert "healthy now" in result.output
    assert checks.keys_unique(Warehouse(WarehouseSettings.local(home)), "bronze.records").passed


def test_doctor_without_repair_reports_and_exits_1(tmp_path: Path) -> None:
    home = _home_with_duplicate_bronze_rows(tmp_path)
    result = runner.invoke(app, ["doctor", "--home", str(home)])
    assert result.exit_code == 1
    assert "problem: bronze.records: record_id appears more than once: 4 records" in result.output
    assert "posttrain doctor --repair" in result.output
    assert Warehouse(WarehouseSettings.local(home)).info("bronze.records").rows == 8


def test_doctor_on_a_healthy_warehouse_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--home", str(tmp_path / "empty")])
    assert result.exit_code == 0
    assert "healthy" in result.output
