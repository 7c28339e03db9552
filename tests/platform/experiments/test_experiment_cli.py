"""``posttrain experiment validate|plan|launch|show`` on a real warehouse, and
``launch --changed-since`` on a temporary git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from experiment_data import SFT, ExperimentWriter, add_sft_rows

from posttrain.cli import run
from posttrain.platform.experiments.launch import changed_experiments, prepare
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse


def _home(warehouse: Warehouse) -> str:
    return warehouse.settings.warehouse.removeprefix("file://").removesuffix("/warehouse")


@pytest.fixture
def sft_file(filled: Warehouse, write_experiment: ExperimentWriter) -> Path:
    first = filled.snapshot_id(TableName.GOLD_SFT)
    add_sft_rows(filled, 100, 4)
    return write_experiment("sft.yaml", SFT.format(first=first))


def test_plan_prints_the_exact_snapshot_ids(
    filled: Warehouse, sft_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run(["experiment", "plan", str(sft_file), "--home", _home(filled)])
    out = capsys.readouterr().out
    assert status == 0, out
    for snapshot_id in (filled.snapshot_id(TableName.GOLD_SFT),):
        assert str(snapshot_id) in out
    assert "sft on tiny" in out and "manifest " in out


def test_plan_json_lists_each_source_with_its_snapshot_id(
    filled: Warehouse, sft_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["experiment", "plan", str(sft_file), "--json", "--home", _home(filled)]) == 0
    plan = json.loads(capsys.readouterr().out)
    current = filled.snapshot_id(TableName.GOLD_SFT)
    assert plan["sources"][0] | {"snapshot_id": current} == plan["sources"][0]
    assert [s["table"] for s in plan["blend"]["sources"]] == ["gold.sft", "gold.sft"]


def test_validate_prints_one_line_per_problem_with_file_and_line(
    filled: Warehouse, write_experiment: ExperimentWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_experiment("bad.yaml", SFT.format(first="v7").replace("seed: 3", "seed: three"))
    status = run(["experiment", "validate", str(bad), "--home", _home(filled)])
    err = capsys.readouterr().err
    assert status == 2
    assert f"{bad}, line 2, seed:" in err


def test_validate_names_an_unknown_version_with_its_line(
    filled: Warehouse, write_experiment: ExperimentWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_experiment("bad.yaml", SFT.format(first="v7"))
    assert run(["experiment", "validate", str(bad), "--home", _home(filled)]) == 2
    assert (
        f"{bad}, line 10, data.sources[1].ref: gold.sft has no version" in capsys.readouterr().err
    )


def test_show_prints_the_manifest_and_says_when_there_is_no_checkpoint(
    filled: Warehouse, sft_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = prepare(filled, path=sft_file)
    assert run(["experiment", "show", manifest.experiment_id, "--home", _home(filled)]) == 0
    out = capsys.readouterr().out
    assert manifest.manifest_id in out and manifest.config_hash in out
    assert str(manifest.snapshots["gold.sft"]) in out
    assert "checkpoints: none" in out
    assert run(["experiment", "show", str(sft_file), "--json", "--home", _home(filled)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["experiment_id"] == manifest.experiment_id and shown["checkpoints"] == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        timeout=30,
    )


def test_changed_since_finds_added_modified_and_untracked_files_not_deleted_ones(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    folder = repo / "experiments"
    folder.mkdir(parents=True)
    for name in ("same.yaml", "edited.yaml", "gone.yaml"):
        (folder / name).write_text(f"name: {name}\n")
    (repo / "other.yaml").write_text("x: 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (folder / "edited.yaml").write_text("name: edited2\n")
    (folder / "added.yaml").write_text("name: added\n")
    _git(repo, "add", "-A")
    _git(repo, "rm", "-q", "experiments/gone.yaml")
    _git(repo, "commit", "-qm", "change")
    (folder / "untracked.yml").write_text("name: u\n")
    (folder / "README.md").write_text("notes\n")
    (repo / "other.yaml").write_text("x: 2\n")

    found = changed_experiments(folder, "HEAD~1")

    assert [p.name for p in found] == ["added.yaml", "edited.yaml", "untracked.yml"]


def test_changed_since_an_unknown_ref_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "experiments").mkdir(parents=True)
    _git(repo, "init", "-q")
    status = run(
        [
            "experiment",
            "launch",
            "--changed-since",
            "nope",
            "--dir",
            str(repo / "experiments"),
            "--home",
            str(tmp_path / "home"),
        ]
    )
    assert status == 2
    assert "nope" in capsys.readouterr().err


def test_launch_changed_since_dry_run_lists_what_would_run(
    filled: Warehouse, sft_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = sft_file.parent
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    status = run(
        [
            "experiment",
            "launch",
            "--changed-since",
            "HEAD",
            "--dir",
            str(repo),
            "--dry-run",
            "--home",
            _home(filled),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "1 experiment file(s)" in out and "would launch" in out and "sft.yaml" in out


def test_launch_needs_exactly_one_of_file_manifest_or_changed_since(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(["experiment", "launch", "--home", str(tmp_path)]) == 2
    assert "exactly one of" in capsys.readouterr().err
