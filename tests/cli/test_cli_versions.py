"""`posttrain version create|list|show|diff`, `rollback`, `lineage`, and TABLE@REF readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from versions_data import build

from posttrain.cli import app, run
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    warehouse = Warehouse(WarehouseSettings.local(tmp_path))
    build(warehouse, range(3), rejected=range(3, 4))
    return tmp_path


def _ok(*args: str) -> str:
    result = runner.invoke(app, [*args])
    assert result.exit_code == 0, result.output
    return result.output


def test_create_then_list_and_show(home: Path) -> None:
    out = _ok("version", "create", "sft", "--as", "v1", "--by", "ana", "--home", str(home))
    assert "Created sft version v1 (tag sft/v1)" in out
    assert "gold.sft" in out
    listed = _ok("version", "list", "--home", str(home))
    assert "v1" in listed and "ana" in listed
    shown = _ok("version", "show", "sft", "v1", "--home", str(home))
    assert "created by ana" in shown
    assert "web: 3" in shown and "MIT: 3" in shown and "empty: 1" in shown


def test_a_second_create_of_a_name_is_one_line_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["version", "create", "sft", "--as", "v1", "--home", str(home)]) == 0
    assert run(["version", "create", "sft", "--as", "v1", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "already has version 'v1'" in err
    assert len(err.strip().splitlines()) == 1


def test_diff_shows_rows_added_and_removed(home: Path) -> None:
    _ok("version", "create", "sft", "--as", "v1", "--home", str(home))
    build(Warehouse(WarehouseSettings.local(home)), range(10, 12), source="forum")
    _ok("version", "create", "sft", "--as", "v2", "--home", str(home))
    out = _ok("version", "diff", "sft", "v1", "v2", "--home", str(home))
    assert "+2" in out and "forum: 2" in out


def test_show_and_query_read_a_table_at_a_version(home: Path) -> None:
    _ok("version", "create", "sft", "--as", "v1", "--home", str(home))
    build(Warehouse(WarehouseSettings.local(home)), range(10, 12), source="forum")
    shown = _ok("show", "gold.sft@v1", "--columns", "record_id,source", "--home", str(home))
    assert "forum" not in shown and shown.count("web") == 3
    sql = "select count(*) n from gold.sft"
    now = _ok("query", sql, "--format", "json", "--home", str(home))
    then = _ok("query", sql, "--at", "gold.sft@v1", "--format", "json", "--home", str(home))
    assert (json.loads(now)["n"], json.loads(then)["n"]) == (5, 3)


def test_rollback_moves_main_back_to_a_version(home: Path) -> None:
    _ok("version", "create", "sft", "--as", "v1", "--home", str(home))
    build(Warehouse(WarehouseSettings.local(home)), range(10, 12), source="forum")
    out = _ok("rollback", "gold.sft", "--to", "v1", "--home", str(home))
    assert "main moved from snapshot" in out
    count = _ok("query", "select count(*) n from gold.sft", "--format", "json", "--home", str(home))
    assert json.loads(count)["n"] == 3
    assert "rollback" in _ok("version", "list", "--events", "--home", str(home))


def test_an_unknown_ref_is_a_one_line_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["show", "gold.sft@v9", "--home", str(home)]) == 2
    assert "no version, snapshot, tag or branch 'v9'" in capsys.readouterr().err


def test_lineage_sums_rows_per_license(home: Path) -> None:
    _ok("version", "create", "sft", "--as", "v1", "--home", str(home))
    out = _ok("lineage", "gold.sft@v1", "--home", str(home))
    assert "bronze.records" in out and "file:///data/web.jsonl" in out
    licenses = _ok("lineage", "gold.sft@v1", "--licenses", "--home", str(home))
    assert "MIT" in licenses and "file:///" not in licenses


def test_a_license_policy_refuses_a_version_that_mixes_forbidden_licenses(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(Warehouse(WarehouseSettings.local(home)), range(10, 11), license="GPL-3.0")
    policy = home / "licenses.yaml"
    policy.write_text("forbidden_together:\n  - [GPL-3.0, MIT]\n")
    args = ["version", "create", "sft", "--as", "v1", "--license-policy", str(policy)]
    assert run([*args, "--home", str(home)]) == 2
    assert "licenses GPL-3.0 and MIT must not be mixed" in capsys.readouterr().err
    assert "No versions yet" in _ok("version", "list", "--home", str(home))
    assert run(["lineage", "gold.sft", "--license-policy", str(policy), "--home", str(home)]) == 2
