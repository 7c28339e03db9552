"""The experiments sensor launches each new or changed experiment file once (run key =
config hash), and skips files that do not parse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from posttrain.jobs.experiments import EXPERIMENTS_DIR_ENV, experiments_sensor, run_key
from posttrain.platform.experiments.config import parse_experiment
from posttrain.platform.settings import project_root

SHIPPED = project_root() / "experiments" / "sft-tiny.yaml"


def _tick(cursor: str | None) -> dg.SensorResult:
    result = experiments_sensor(dg.build_sensor_context(cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(EXPERIMENTS_DIR_ENV, str(tmp_path))
    (tmp_path / "sft.yaml").write_text(SHIPPED.read_text())
    return tmp_path


def test_a_new_file_is_launched_once_with_its_config_hash_as_run_key(folder: Path) -> None:
    first = _tick(None)
    (request,) = first.run_requests or []
    config_hash = parse_experiment(SHIPPED.read_text()).config.config_hash()
    assert request.run_key == run_key(config_hash)
    ops = request.run_config["ops"]
    assert ops["experiment_manifest"]["config"]["config_yaml"] == SHIPPED.read_text()
    assert not _tick(first.cursor).run_requests


def test_a_layout_change_launches_nothing_and_a_real_change_launches_once(folder: Path) -> None:
    cursor = _tick(None).cursor
    path = folder / "sft.yaml"
    path.write_text("# reformatted\n" + path.read_text())
    assert not _tick(cursor).run_requests
    path.write_text(path.read_text().replace("seed: 0", "seed: 1"))
    changed = _tick(cursor)
    assert len(changed.run_requests or []) == 1
    assert not _tick(changed.cursor).run_requests


def test_an_invalid_file_is_skipped_and_the_others_still_launch(folder: Path) -> None:
    (folder / "broken.yaml").write_text("name: [\n")
    (folder / "typo.yaml").write_text(SHIPPED.read_text().replace("seed: 0", "sed: 0"))
    (request,) = _tick(None).run_requests or []
    assert request.tags["posttrain/experiment"] == "sft-tiny"
