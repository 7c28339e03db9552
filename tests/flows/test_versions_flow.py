"""Flow: versions cut by the CLI → the sensor starts one run per version → its metadata;
later data never changes a version; rollback restores its bytes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner
from versions_data import build

from posttrain.cli import app
from posttrain.jobs.versions import corpus_version_job, corpus_versions_sensor
from posttrain.platform.versions import resolve
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource

runner = CliRunner()


def _tick_and_run(
    home: Path, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[str], str | None]:
    resources = {"warehouse": WarehouseResource(home=str(home))}
    with dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
        result = corpus_versions_sensor(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    assert isinstance(result, dg.SensorResult)
    keys = []
    for request in result.run_requests or []:
        assert request.run_key is not None
        keys.append(request.run_key)
        run = corpus_version_job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            resources=resources,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        assert run.success
    return keys, result.cursor


@pytest.mark.slow
def test_versions_flow_from_cli_to_sensor_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    build(warehouse, range(4), rejected=range(4, 5))

    def cli(*args: str) -> str:
        result = runner.invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, result.output
        return result.output

    cli("version", "create", "sft", "--as", "v1")
    v1_bytes = warehouse.read("gold.sft", snapshot_id=resolve(warehouse, "gold.sft@v1")[1])
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        keys, cursor = _tick_and_run(home, instance, None)
        assert keys == ["sft@v1"]
        assert _tick_and_run(home, instance, cursor) == ([], cursor)  # nothing new

        build(warehouse, range(10, 13), source="forum", license="CC-BY-4.0")  # arrives later
        cli("version", "create", "sft", "--as", "v2")
        keys, cursor = _tick_and_run(home, instance, cursor)
        assert keys == ["sft@v2"]

        (run,) = instance.get_run_records(dg.RunsFilter(tags={"dagster/run_key": "sft@v2"}))
        output = [
            e
            for e in instance.all_logs(run.dagster_run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_OBSERVATION"
        ]
        observed = {
            e.dagster_event.asset_key.to_user_string(): e.dagster_event.event_specific_data
            for e in output
            if e.dagster_event and e.dagster_event.asset_key
        }
        gold = observed["gold/sft"].asset_observation.metadata  # type: ignore[union-attr]
        assert gold["rows"].value == 7
        assert gold["by_license"].value == {"MIT": 4, "CC-BY-4.0": 3}

    # v1 is unchanged, byte for byte, after later data and v2.
    again = warehouse.read("gold.sft", snapshot_id=resolve(warehouse, "gold.sft@v1")[1])
    assert again.equals(v1_bytes)
    assert "+3" in cli("version", "diff", "sft", "v1", "v2")
    cli("rollback", "gold.sft", "--to", "v1")
    assert warehouse.read("gold.sft").sort_by("record_id").equals(v1_bytes.sort_by("record_id"))
