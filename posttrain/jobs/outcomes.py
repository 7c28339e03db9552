"""The outcomes sensor: new ``bronze.outcomes`` snapshots → re-join and cut a version.

The cursor is the ``bronze.outcomes`` snapshot id last acted on. A tick that finds a newer
one requests a run of ``outcomes_loop`` pinned to the input snapshots it saw; the run key
is those snapshot ids, so the same inputs never run twice, whatever the cursor says.
Stopped by default: turn it on under Automation in the UI (``make ui``).
"""

from __future__ import annotations

import dagster as dg

from posttrain.assets._support import table_key
from posttrain.platform.outcomes.labeled import INPUTS, LABELED, OUTCOMES
from posttrain.resources import WarehouseResource

outcomes_loop = dg.define_asset_job(
    name="outcomes_loop",
    selection=dg.AssetSelection.assets(table_key(LABELED)),
    description="Re-join silver.labeled over new outcomes and cut a version of the corpus.",
)


def run_key(pinned: dict[str, int | None]) -> str:
    """The run key of a cut over ``pinned``: its input snapshot ids, in a fixed order."""
    return "outcomes:" + ",".join(f"{name}={pinned.get(name)}" for name in INPUTS)


@dg.sensor(
    job=outcomes_loop,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="New outcomes in bronze.outcomes → re-join silver.labeled and cut a version.",
)
def outcomes_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Request one pinned ``outcomes_loop`` run per new ``bronze.outcomes`` snapshot."""
    wh = warehouse.open()
    pinned = wh.pin(*INPUTS)
    outcomes_id = pinned[OUTCOMES]
    if outcomes_id is None:
        return dg.SkipReason(f"{OUTCOMES} has no snapshot yet")
    if context.cursor == str(outcomes_id):
        return dg.SkipReason(f"no new outcomes since {OUTCOMES} snapshot {outcomes_id}")
    config = {"cut_version": True, "pinned": {k: v for k, v in pinned.items() if v is not None}}
    request = dg.RunRequest(
        run_key=run_key(pinned),
        run_config={"ops": {"silver_labeled": {"config": config}}},
        tags={"posttrain/outcomes-snapshot": str(outcomes_id)},
    )
    return dg.SensorResult(run_requests=[request], cursor=str(outcomes_id))
