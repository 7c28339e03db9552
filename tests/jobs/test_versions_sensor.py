"""The versions sensor: one run per new corpus version, never twice, cursor on the table."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from versions_data import build

from posttrain.definitions import defs
from posttrain.jobs.versions import corpus_version_job, corpus_versions_sensor
from posttrain.platform import versions as v
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource


def _tick(home: Path, cursor: str | None, instance: dg.DagsterInstance) -> dg.SensorResult:
    with dg.build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={"warehouse": WarehouseResource(home=str(home))},
    ) as context:
        result = corpus_versions_sensor(context)
    assert isinstance(result, (dg.SensorResult, dg.SkipReason))
    return result  # type: ignore[return-value]


def test_no_version_table_yet_skips(tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        result = _tick(tmp_path, None, instance)
    assert isinstance(result, dg.SkipReason)


def test_a_new_version_requests_one_run_keyed_by_corpus_and_version(tmp_path: Path) -> None:
    wh = Warehouse(WarehouseSettings.local(tmp_path))
    build(wh, range(3))
    v.create_version(wh, "sft", "v1")
    with dg.instance_for_test() as instance:
        first = _tick(tmp_path, None, instance)
        assert isinstance(first, dg.SensorResult)
        assert [r.run_key for r in first.run_requests or []] == ["sft@v1"]
        assert first.cursor == str(wh.snapshot_id("lineage.corpus_versions"))
        again = _tick(tmp_path, first.cursor, instance)
        assert isinstance(again, dg.SkipReason)  # same cursor: nothing new
        build(wh, range(3, 5))
        v.create_version(wh, "sft", "v2")
        v.rollback(wh, "gold.sft", "v1")  # an event, not a version: no run
        second = _tick(tmp_path, first.cursor, instance)
        assert isinstance(second, dg.SensorResult)
        assert [r.run_key for r in second.run_requests or []] == ["sft@v2"]


def test_the_sensor_is_in_the_code_location_stopped_by_default() -> None:
    (sensor,) = [s for s in defs.sensors or [] if s.name == "corpus_versions_sensor"]
    assert isinstance(sensor, dg.SensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "corpus_version_job"
    assert "corpus_version_job" in {j.name for j in defs.jobs or []}


def test_the_job_records_the_versions_rows_by_source_license_and_reason(tmp_path: Path) -> None:
    wh = Warehouse(WarehouseSettings.local(tmp_path))
    build(wh, range(3), rejected=range(3, 5))
    v.create_version(wh, "sft", "v1")
    result = corpus_version_job.execute_in_process(
        run_config=dg.RunConfig(
            ops={
                op: {"config": {"corpus": "sft", "version": "v1"}}
                for op in ("corpus_version_stats", "corpus_version_evals")
            }
        ),
        resources={"warehouse": WarehouseResource(home=str(tmp_path))},
    )
    assert result.success
    summary = result.output_for_node("corpus_version_stats")
    assert summary["gold.sft"] == {"rows": 3, "by_source": {"web": 3}, "by_license": {"MIT": 3}}
    assert summary["silver.rejections"]["by_reason"] == {"empty": 2}
    observed = {
        e.asset_observation_data.asset_observation.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert "gold/sft" in observed
    # No evals configured in the home's posttrain.yaml: none ran, nothing was written.
    assert result.output_for_node("corpus_version_evals") == []
    assert not wh.exists("eval.results")
