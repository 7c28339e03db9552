"""``posttrain branch``, ``publish`` and ``forget`` from the command line."""

from __future__ import annotations

from pathlib import Path

from curated_warehouse import build
from typer.testing import CliRunner

from posttrain.cli import app, run
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


def _home(tmp_path: Path) -> tuple[Path, Warehouse]:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    build(warehouse, {"r1": "alpha", "r2": "beta", "r3": "gamma"})
    return home, warehouse


def _ids(warehouse: Warehouse) -> list[str]:
    return sorted(warehouse.read("gold.sft")["record_id"].to_pylist())


def test_branch_edit_then_publish_from_the_command_line(tmp_path: Path) -> None:
    home, warehouse = _home(tmp_path)
    h = ["--home", str(home)]
    for args in (
        ["branch", "create", "gold.sft", "review-x", "--curator", "ana", *h],
        ["branch", "drop", "gold.sft", "review-x", "--where", "record_id = 'r2'", *h],
        ["branch", "fix", "gold.sft", "review-x", "r1", "--set", '{"license": "CC0"}', *h],
        [
            "branch",
            "relabel",
            "gold.sft",
            "review-x",
            "--where",
            "record_id = 'r3'",
            "--column",
            "source",
            "--value",
            "curated",
            *h,
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["branch", "list", *h])
    assert "gold.sft@review-x" in listed.output and "3 edit(s)" in listed.output
    assert _ids(warehouse) == ["r1", "r2", "r3"]

    published = runner.invoke(app, ["publish", "gold.sft", "review-x", *h])
    assert published.exit_code == 0, published.output
    assert "passed keys_unique" in published.output
    assert _ids(warehouse) == ["r1", "r3"]


def test_a_refused_publish_is_one_error_line_naming_what_moved(
    tmp_path: Path, capsys: object
) -> None:
    home, _ = _home(tmp_path)
    h = ["--home", str(home)]
    for branch, record in (("a", "r1"), ("b", "r2")):
        assert run(["branch", "create", "gold.sft", branch, *h]) == 0
        assert (
            run(["branch", "drop", "gold.sft", branch, "--where", f"record_id = '{record}'", *h])
            == 0
        )
    assert run(["publish", "gold.sft", "a", *h]) == 0
    assert run(["publish", "gold.sft", "b", *h]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "main has moved since the branch was cut" in err


def test_forget_from_the_command_line_reports_what_it_changed(tmp_path: Path) -> None:
    home, warehouse = _home(tmp_path)
    result = runner.invoke(app, ["forget", "--record-id", "r2", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "bronze.records@main" in result.output and "file(s) deleted" in result.output
    assert "r2" not in warehouse.read("bronze.records")["record_id"].to_pylist()
    assert run(["forget", "--home", str(home)]) == 2
