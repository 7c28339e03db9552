"""`posttrain tables`, `show` and `query` on a small real warehouse."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    warehouse = Warehouse(WarehouseSettings.local(tmp_path))
    rows = [
        {"record_id": "r1", "reason": "near_dup", "kept_record_id": "k1"},
        {"record_id": "r2", "reason": "empty"},
    ]
    warehouse.append(
        "silver.rejections", pa.Table.from_pylist(rows, schema=SILVER_REJECTIONS), Lineage("t")
    )
    return tmp_path


def test_tables_lists_name_rows_and_full_snapshot_id(home: Path) -> None:
    snapshot_id = Warehouse(WarehouseSettings.local(home)).snapshot_id("silver.rejections")
    result = runner.invoke(app, ["tables", "--home", str(home)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "silver.rejections" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:3] == ["silver.rejections", "2", str(snapshot_id)]


def test_show_filters_rows(home: Path) -> None:
    result = runner.invoke(
        app, ["show", "silver.rejections", "--where", "reason = 'near_dup'", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    assert "r1" in result.output and "r2" not in result.output


def test_query_prints_json_lines(home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "query",
            "select record_id from silver.rejections order by 1",
            "--format",
            "json",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ['{"record_id": "r1"}', '{"record_id": "r2"}']


@pytest.mark.parametrize("command", ["tables", "show", "query"])
def test_every_command_explains_itself(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--home" in result.output


def test_errors_print_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "posttrain"
    result = subprocess.run(
        [str(script), "show", "silver.nothing", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no table named 'silver.nothing'" in result.stderr
    assert "Traceback" not in result.stderr
