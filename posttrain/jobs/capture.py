"""The capture sensor: each flush of ``posttrain serve`` → an observation on bronze.

The service commits micro-batches to ``bronze.records`` and ``bronze.outcomes`` outside
Dagster; this sensor reports each one (batch id, events, snapshot id) as an
``AssetObservation`` of the table, so the UI's asset pages list every flush. The outcomes
sensor reacts to the same ``bronze.outcomes`` snapshots and re-joins ``silver.labeled``.
The cursor is the last snapshot sequence number reported per table.
"""

from __future__ import annotations

import json

import dagster as dg

from posttrain.assets._support import table_key
from posttrain.platform.capture.flusher import capture_flushes
from posttrain.platform.schemas import TableName
from posttrain.resources import WarehouseResource

CAPTURED_TABLES = (TableName.BRONZE_RECORDS, TableName.BRONZE_OUTCOMES)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Each capture flush (posttrain serve) → an observation on bronze.records / "
    "bronze.outcomes with its batch id, events and snapshot id.",
)
def capture_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Report the capture flushes committed since the last tick."""
    wh = warehouse.open()
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    events: list[dg.AssetObservation] = []
    for name in CAPTURED_TABLES:
        for flush in capture_flushes(wh, name, after_sequence=cursor.get(name, 0)):
            events.append(
                dg.AssetObservation(
                    asset_key=table_key(name),
                    metadata={
                        "capture_batch": flush.batch_id,
                        "events": dg.MetadataValue.int(flush.rows),
                        "snapshot_id": dg.MetadataValue.text(str(flush.snapshot_id)),
                        "committed_at": dg.MetadataValue.timestamp(flush.timestamp_ms / 1000),
                    },
                )
            )
            cursor[name] = max(cursor.get(name, 0), flush.sequence_number)
    if not events:
        return dg.SkipReason("no capture flush since the last tick")
    return dg.SensorResult(asset_events=events, cursor=json.dumps(cursor, sort_keys=True))
