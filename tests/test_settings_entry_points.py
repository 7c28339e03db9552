"""The CLI and the Dagster resources reach the same warehouse and executor, configured once
in a settings file or in environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from posttrain.assets.evals import eval_assets
from posttrain.cli import app
from posttrain.cli._app import executor_settings, open_warehouse
from posttrain.platform.settings import ExecutorSettings, WarehouseSettings
from posttrain.resources import RayResource, WarehouseResource

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "data" / "samples" / "math_tutor.jsonl"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$POSTTRAIN_HOME`` for this test, and no other settings."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("POSTTRAIN_HOME", str(path))
    return path


def _elsewhere(tmp_path: Path) -> WarehouseSettings:
    """A second SQLite catalog and warehouse folder, outside the home."""
    other = tmp_path / "elsewhere"
    return WarehouseSettings(
        catalog_uri=f"sqlite:///{other / 'catalog.db'}", warehouse=(other / "data").as_uri()
    )


def _write_settings(home: Path, warehouse: WarehouseSettings, executor: str) -> Path:
    file = home / "posttrain.yaml"
    file.write_text(
        "warehouse:\n"
        f"  catalog_uri: {warehouse.catalog_uri}\n"
        f"  warehouse: {warehouse.warehouse}\n"
        f"executor:\n{executor}"
    )
    return file


def test_cli_and_resource_reach_the_warehouse_named_in_the_settings_file(
    home: Path, tmp_path: Path
) -> None:
    expected = _elsewhere(tmp_path)
    _write_settings(home, expected, "  kind: in_process\n")
    assert open_warehouse(None).settings == expected
    assert WarehouseResource().settings() == expected


def test_cli_and_resource_reach_the_warehouse_named_in_the_environment(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_settings(home, WarehouseSettings.local(tmp_path / "from-file"), "  kind: ray\n")
    expected = _elsewhere(tmp_path)
    monkeypatch.setenv("POSTTRAIN_CATALOG_URI", str(expected.catalog_uri))
    monkeypatch.setenv("POSTTRAIN_WAREHOUSE", expected.warehouse)
    assert open_warehouse(None).settings == expected
    assert WarehouseResource().settings() == expected


def test_cli_and_resource_choose_the_executor_named_in_the_settings_file(
    home: Path, tmp_path: Path
) -> None:
    _write_settings(home, _elsewhere(tmp_path), "  kind: ray\n  num_cpus: 3\n")
    expected = ExecutorSettings(kind="ray", num_cpus=3)
    assert executor_settings(1, None) == expected
    assert RayResource().executor_settings() == expected


def test_cli_and_resource_choose_the_ray_cluster_named_in_the_environment(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_settings(home, _elsewhere(tmp_path), "  kind: in_process\n")
    monkeypatch.setenv("POSTTRAIN_EXECUTOR", "ray")
    monkeypatch.setenv("POSTTRAIN_RAY_ADDRESS", "ray://head:10001")
    expected = ExecutorSettings(kind="ray", ray_address="ray://head:10001")
    assert executor_settings(1, None) == expected
    assert RayResource().executor_settings() == expected


def test_flags_and_resource_fields_still_win_over_the_settings(home: Path, tmp_path: Path) -> None:
    _write_settings(home, _elsewhere(tmp_path), "  ray_address: auto\n")
    assert executor_settings(4, "ray://other:1") == ExecutorSettings(
        kind="ray", ray_address="ray://other:1"
    )
    assert RayResource(mode="in_process").executor_settings() == ExecutorSettings(kind="in_process")
    # Another home is another settings file (none here): its embedded warehouse.
    pinned = tmp_path / "pinned"
    assert WarehouseResource(home=str(pinned)).settings() == WarehouseSettings.local(pinned)
    assert WarehouseResource(catalog_uri="sqlite:///x.db").settings().catalog_uri == (
        "sqlite:///x.db"
    )


def test_tables_and_the_assets_use_the_sqlite_catalog_set_only_in_the_settings_file(
    home: Path, tmp_path: Path
) -> None:
    elsewhere = _elsewhere(tmp_path)
    _write_settings(home, elsewhere, "  kind: in_process\n")
    result = dg.materialize(
        eval_assets,
        resources={"warehouse": WarehouseResource()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    listing = CliRunner().invoke(app, ["tables"])
    assert listing.exit_code == 0, listing.output
    assert "eval.humaneval" in listing.output
    assert (tmp_path / "elsewhere" / "catalog.db").is_file()
    assert sorted(p.name for p in home.iterdir()) == ["posttrain.yaml"]


def test_a_bad_settings_file_stops_the_cli_with_one_line_before_anything_is_written(
    home: Path,
) -> None:
    file = home / "posttrain.yaml"
    file.write_text("warehouse:\n  catalog_type: postgres\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "posttrain"), "ingest", str(SAMPLE)],
        # Wide, so the terminal's wrapping is not mistaken for a second line.
        env={**os.environ, "COLUMNS": "500"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{file}: warehouse.catalog_type:" in lines[0]
    assert sorted(p.name for p in home.iterdir()) == ["posttrain.yaml"]


def test_a_bad_settings_file_fails_the_asset_before_anything_is_written(home: Path) -> None:
    file = home / "posttrain.yaml"
    file.write_text("executor:\n  num_cpus: -1\nwarehouse:\n  catalog_type: postgres\n")
    result = dg.materialize(
        eval_assets,
        resources={"warehouse": WarehouseResource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert str(file) in str(failure.step_failure_data.error)
    assert sorted(p.name for p in home.iterdir()) == ["posttrain.yaml"]
