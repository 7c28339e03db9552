"""Outcome assets: ``bronze/outcomes``, ``silver/labeled``, ``lineage/filtered_snapshots``.

``bronze/outcomes`` is written outside Dagster (``posttrain outcomes ingest``, the Python
API ``record_outcomes``), so it is an external asset here; the outcomes sensor watches its
snapshots. ``silver/labeled`` is one cut under the late-arrival policy; run by the sensor
(``cut_version``) it also becomes a version of the policy's corpus.
"""

from datetime import datetime

import dagster as dg
from pydantic import Field

from posttrain.assets._support import (
    WRITER_POOLS,
    check_result,
    table_key,
    table_metadata,
    table_spec,
)
from posttrain.platform.outcomes.labeled import (
    INPUTS,
    LABELED,
    OUTCOMES,
    cut_labeled,
    labeled_checks,
)
from posttrain.platform.outcomes.loop import cut_version
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import load_settings
from posttrain.resources import WarehouseResource

GROUP = "outcomes"
LABELED_CHECKS = ("record_id_unique", "schema_matches", "history_complete")

bronze_outcomes = table_spec(TableName.BRONZE_OUTCOMES, group=GROUP)
# Written by ``posttrain snapshot``: one row per filtered snapshot frozen.
lineage_filtered_snapshots = table_spec(
    TableName.LINEAGE_FILTERED_SNAPSHOTS, group=GROUP, deps=[LABELED]
)


class LabeledConfig(dg.Config):
    """One cut of ``silver.labeled``; the sensor pins the input snapshots it saw."""

    cut_version: bool = Field(
        default=False, description="Also cut a version of the policy's corpus from this cut."
    )
    window_hours: float | None = Field(
        default=None, description="Late-arrival window; None = the settings' outcomes section."
    )
    as_of: str | None = Field(
        default=None, description="Cut time, ISO 8601 with a time zone; None = now."
    )
    pinned: dict[str, int] = Field(
        default_factory=dict,
        description="Input table → snapshot id to read (the sensor sets these); else current.",
    )


def _policy(config: LabeledConfig) -> LateArrivalPolicy:
    policy = load_settings().outcomes
    if config.window_hours is not None:
        policy = policy.model_copy(update={"window_hours": config.window_hours})
    return policy


@dg.multi_asset(
    pool=WRITER_POOLS["silver"],
    specs=[
        table_spec(
            LABELED,
            group=GROUP,
            deps=[TableName.SILVER_CONVERSATIONS, TableName.BRONZE_RECORDS, OUTCOMES],
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=table_key(LABELED), blocking=True) for name in LABELED_CHECKS
    ],
)
def silver_labeled(
    context: dg.AssetExecutionContext, config: LabeledConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Join every conversation to its outcomes (latest per kind + history) under the
    late-arrival policy; with ``cut_version``, release the cut as the next corpus version."""
    wh = warehouse.open()
    policy = _policy(config)
    pinned = wh.pin(*INPUTS)
    pinned.update({name: config.pinned[name] for name in INPUTS if name in config.pinned})
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    version = ""
    if config.cut_version:
        result = cut_version(
            wh, policy, at=pinned, as_of=as_of, created_by=f"dagster:{context.run_id}"
        )
        cut = result.cut
        version = result.version.ref if result.version else f"none ({result.why_not})"
        context.log.info(f"version: {version}")
    else:
        cut = cut_labeled(wh, policy, at=pinned, as_of=as_of)
    metadata = table_metadata(
        wh,
        LABELED,
        snapshot_id=cut.snapshot_id,
        committed=cut.committed,
        seconds=cut.seconds,
        rows_processed=cut.rows,
        bytes_processed=0,
        extra={
            "outcomes_included": cut.outcomes_included,
            "outcome_cutoff": str(cut.outcome_cutoff or "none"),
            "as_of": cut.as_of.isoformat(),
            "window_hours": policy.window_hours,
            "version": version or "not requested",
        },
    )
    outcomes = labeled_checks(wh, cut.snapshot_id)
    return dg.MaterializeResult(
        asset_key=table_key(LABELED),
        metadata=metadata,
        check_results=[
            check_result(outcomes[name], asset=LABELED, check_name=name) for name in LABELED_CHECKS
        ],
    )
