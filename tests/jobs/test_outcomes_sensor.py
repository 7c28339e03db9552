"""The outcomes sensor: cursor on bronze.outcomes snapshots, run keys of input snapshots."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from posttrain.jobs.outcomes import outcomes_sensor, run_key
from posttrain.platform.outcomes.ingest import record_outcomes
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource


def _tick(home: Path, cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(
        cursor=cursor, resources={"warehouse": WarehouseResource(home=str(home))}
    ) as context:
        return outcomes_sensor(context)  # type: ignore[no-any-return]


def _outcomes(home: Path, record_id: str) -> int | None:
    warehouse = Warehouse(WarehouseSettings.local(home))
    return record_outcomes(
        warehouse, [{"record_id": record_id, "kind": "reward", "value": 1.0}]
    ).snapshot_id


def test_skips_while_there_are_no_outcomes(tmp_path: Path) -> None:
    result = _tick(tmp_path)

    assert isinstance(result, dg.SkipReason)
    assert "bronze.outcomes has no snapshot yet" in (result.skip_message or "")


def test_new_outcomes_request_one_pinned_run_and_move_the_cursor(tmp_path: Path) -> None:
    snapshot_id = _outcomes(tmp_path, "r1")

    result = _tick(tmp_path)

    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert result.cursor == str(snapshot_id)
    assert request.run_key == run_key(
        {"silver.conversations": None, "bronze.records": None, "bronze.outcomes": snapshot_id}
    )
    config = request.run_config["ops"]["silver_labeled"]["config"]
    assert config == {"cut_version": True, "pinned": {"bronze.outcomes": snapshot_id}}


def test_a_tick_with_the_cursor_at_the_latest_snapshot_skips(tmp_path: Path) -> None:
    snapshot_id = _outcomes(tmp_path, "r1")

    result = _tick(tmp_path, cursor=str(snapshot_id))

    assert isinstance(result, dg.SkipReason)


def test_each_new_outcomes_snapshot_gets_its_own_run_key(tmp_path: Path) -> None:
    first = _tick(tmp_path, None) if _outcomes(tmp_path, "r1") else None
    assert isinstance(first, dg.SensorResult)
    _outcomes(tmp_path, "r2")

    second = _tick(tmp_path, first.cursor)

    assert isinstance(second, dg.SensorResult)
    keys = [r.run_key for r in (first.run_requests or []) + (second.run_requests or [])]
    assert len(set(keys)) == 2 and second.cursor != first.cursor


def test_the_same_inputs_give_the_same_run_key(tmp_path: Path) -> None:
    _outcomes(tmp_path, "r1")

    once, twice = _tick(tmp_path), _tick(tmp_path)  # e.g. a cursor lost between ticks

    assert isinstance(once, dg.SensorResult) and isinstance(twice, dg.SensorResult)
    assert [r.run_key for r in once.run_requests or []] == [
        r.run_key for r in twice.run_requests or []
    ]
