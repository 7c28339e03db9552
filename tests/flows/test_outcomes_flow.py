"""End to end: ingest → v1 → outcomes arrive late → the sensor runs → v2; v1 keeps its bytes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from posttrain.jobs.outcomes import outcomes_sensor
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import load_sources
from posttrain.platform.outcomes.ingest import ingest_outcome_file
from posttrain.platform.outcomes.labeled import LABELED
from posttrain.platform.versions import get_version
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource

from .conftest import run_assets

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTCOMES = REPO_ROOT / "data" / "outcomes"


def _files(warehouse: Warehouse, snapshot_id: int) -> dict[str, bytes]:
    table = warehouse.table(LABELED)
    return {
        task.file.file_path: table.io.new_input(task.file.file_path).open().read()
        for task in table.scan(snapshot_id=snapshot_id).plan_files()
    }


def _tick_and_run(home: Path, cursor: str | None) -> tuple[str | None, str]:
    with dg.build_sensor_context(
        cursor=cursor, resources={"warehouse": WarehouseResource(home=str(home))}
    ) as context:
        result = outcomes_sensor(context)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    run = run_assets(home, selection=["silver/labeled"], run_config=request.run_config)
    assert run.success, [e.message for e in run.all_events if e.is_failure]
    checks = run.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    return result.cursor, request.run_key or ""


def test_late_outcomes_reach_v2_through_the_sensor_and_v1_keeps_its_bytes(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    seed_humaneval(warehouse)
    specs = [
        s
        for s in load_sources(REPO_ROOT / "data" / "sources.yaml")
        if s.source in ("agent-traces", "dev-support")
    ]
    ingest(warehouse, specs)
    silver = run_assets(home, selection=["silver/conversations", "silver/rejections"])
    assert silver.success

    ingest_outcome_file(warehouse, OUTCOMES / "first_batch.jsonl")
    cursor, first_key = _tick_and_run(home, None)
    v1 = get_version(warehouse, "labeled", "v1")
    v1_snapshot = v1.snapshots[LABELED]
    assert v1_snapshot is not None
    v1_rows = warehouse.read(LABELED, snapshot_id=v1_snapshot)
    v1_files = _files(warehouse, v1_snapshot)
    # Records are younger than the window: only the labeled ones are in v1.
    assert v1_rows.num_rows > 0 and all(n > 0 for n in v1_rows["num_outcomes"].to_pylist())

    late = ingest_outcome_file(warehouse, OUTCOMES / "late_batch.jsonl")
    with dg.build_sensor_context(
        cursor=str(late.snapshot_id),
        resources={"warehouse": WarehouseResource(home=str(home))},
    ) as context:
        nothing = outcomes_sensor(context)
    assert isinstance(nothing, dg.SkipReason)
    _, second_key = _tick_and_run(home, cursor)

    v2 = get_version(warehouse, "labeled", "v2")
    v2_snapshot = v2.snapshots[LABELED]
    assert v2_snapshot is not None and v2_snapshot != v1_snapshot
    assert second_key != first_key
    v2_rows = warehouse.read(LABELED, snapshot_id=v2_snapshot)
    assert v2_rows.num_rows > v1_rows.num_rows
    assert v2.snapshots["bronze.outcomes"] == late.snapshot_id
    assert "feedback" in {o["kind"] for h in v2_rows["outcomes"].to_pylist() for o in h}
    assert warehouse.read(LABELED, snapshot_id=v1_snapshot).equals(v1_rows)
    assert _files(warehouse, v1_snapshot) == v1_files
    assert get_version(warehouse, "labeled", "v1").snapshots == v1.snapshots
