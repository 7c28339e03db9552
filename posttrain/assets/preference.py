"""``silver/preferences``, ``silver/preference_rejections`` and ``gold/dpo``: the preference
(DPO) corpus, in its own asset group."""

import dagster as dg
from pydantic import Field

from posttrain.assets._support import (
    WRITER_POOLS,
    check_result,
    integrity_check_specs,
    table_key,
    table_metadata,
    table_result,
    table_spec,
)
from posttrain.platform.checks import schema_matches
from posttrain.platform.decontam import DecontamConfig
from posttrain.platform.evals import benchmark_tables
from posttrain.platform.preference import PairingConfig, PairingRule, PreferenceConfig
from posttrain.platform.preference import checks as pref_checks
from posttrain.platform.preference.build import (
    DPO,
    PREFERENCE_REJECTIONS,
    PREFERENCES,
    build_dpo,
    build_preferences,
)
from posttrain.platform.rl.rollouts import ROLLOUTS
from posttrain.platform.schemas import TABLES, TableName
from posttrain.resources import RayResource, WarehouseResource

GROUP = "preference"
# bronze.outcomes: pairwise preferences that arrive later as outcomes become judgment pairs.
_INPUTS = [TableName.BRONZE_RECORDS, TableName.BRONZE_OUTCOMES, *benchmark_tables()]


class PreferenceBuildConfig(dg.Config):
    """How rated completions are paired; the other rules keep the platform defaults."""

    pairing_rule: str = Field(
        default=PairingRule.BEST_VS_WORST.value,
        description="best_vs_worst, best_vs_each or all_above_margin (rated completions).",
    )
    min_margin: float = Field(default=0.0, description="Smallest score gap that makes a pair.")

    def preference_config(self) -> PreferenceConfig:
        """The platform config; raises ``ValidationError`` on a bad value, before any write."""
        return PreferenceConfig(
            pairing=PairingConfig.model_validate(
                {"rule": self.pairing_rule, "min_margin": self.min_margin}
            )
        )


@dg.multi_asset(
    pool=WRITER_POOLS["silver"],
    specs=[
        table_spec(PREFERENCES, group=GROUP, deps=_INPUTS),
        table_spec(PREFERENCE_REJECTIONS, group=GROUP, deps=_INPUTS),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_conserved",
            asset=table_key(PREFERENCES),
            blocking=True,
            description="each preference record is refused xor paired; each pair kept xor refused",
        ),
        dg.AssetCheckSpec("chosen_differs", asset=table_key(PREFERENCES), blocking=True),
        *integrity_check_specs(PREFERENCES),
        dg.AssetCheckSpec("units_unique", asset=table_key(PREFERENCE_REJECTIONS), blocking=True),
        dg.AssetCheckSpec("schema_matches", asset=table_key(PREFERENCE_REJECTIONS), blocking=True),
    ],
)
def silver_preferences(
    context: dg.AssetExecutionContext,
    config: PreferenceBuildConfig,
    warehouse: WarehouseResource,
    ray: RayResource,
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """Candidate pairs from every preference format, checked, deduplicated, decontaminated.

    Rated completions are paired by the configured rule, recorded in ``pairing_rule``.
    """
    preference_config = config.preference_config()
    wh = warehouse.open()
    report = build_preferences(
        wh, preference_config, ray.executor_for(context), log=context.log.info
    )
    context.log.info(
        f"preferences: {report.records_in:,} records, {report.candidates:,} candidate pairs, "
        f"{report.kept:,} kept, rejected {report.rejected_by_reason}"
    )
    at = report.snapshots
    pairs = table_metadata(
        wh,
        PREFERENCES,
        snapshot_id=report.snapshot_id,
        seconds=report.seconds,
        rows_processed=report.records_in,
        bytes_processed=0,
        extra={
            "pairs": report.kept,
            "candidate_pairs": report.candidates,
            "pairing_rule": preference_config.pairing.rule.value,
            "margin_histogram": dg.MetadataValue.md(pref_checks.margin_histogram(report.margins)),
        },
    )
    rejections = table_metadata(
        wh,
        PREFERENCE_REJECTIONS,
        snapshot_id=report.rejections_snapshot_id,
        seconds=report.seconds,
        rows_processed=report.records_in,
        bytes_processed=0,
        extra={
            "records_rejected": report.records_rejected,
            "rejected_by_reason": dg.MetadataValue.json(report.rejected_by_reason),
        },
    )
    return (
        table_result(
            wh,
            PREFERENCES,
            report.snapshot_id,
            metadata=pairs,
            checks={
                "rows_conserved": pref_checks.preferences_conserved(wh, at),
                "chosen_differs": pref_checks.sides_differ(wh, PREFERENCES, at),
            },
        ),
        dg.MaterializeResult(
            asset_key=table_key(PREFERENCE_REJECTIONS),
            metadata=rejections,
            check_results=[
                check_result(
                    pref_checks.units_unique(wh, at),
                    asset=PREFERENCE_REJECTIONS,
                    check_name="units_unique",
                ),
                check_result(
                    schema_matches(wh, PREFERENCE_REJECTIONS, TABLES[PREFERENCE_REJECTIONS].schema),
                    asset=PREFERENCE_REJECTIONS,
                    check_name="schema_matches",
                ),
            ],
        ),
    )


@dg.multi_asset(
    pool=WRITER_POOLS["gold"],
    # silver/rollouts writes the rollouts rows of silver.preferences: gold.dpo follows it too.
    specs=[table_spec(DPO, group=GROUP, deps=[PREFERENCES, ROLLOUTS])],
    check_specs=[
        dg.AssetCheckSpec(
            "prompts_not_contaminated",
            asset=table_key(DPO),
            blocking=True,
            description="no pair whose prompt shares n-grams with an eval benchmark",
        ),
        dg.AssetCheckSpec("chosen_differs", asset=table_key(DPO), blocking=True),
        *integrity_check_specs(DPO),
    ],
)
def gold_dpo(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every kept pair of every origin (preference formats, judgments, rollouts) in TRL's
    conversational preference format (prompt, chosen, rejected message lists), with
    ``pair_id``, provenance and, for rollout pairs, each side's checkpoint; ``DPOTrainer``
    reads it as it is."""
    wh = warehouse.open()
    report = build_dpo(wh)
    at: dict[str, int | None] = {
        PREFERENCES: report.preferences_snapshot_id,
        DPO: report.snapshot_id,
    }
    decontam = DecontamConfig.recorded(
        wh.snapshot_summary(PREFERENCES, report.preferences_snapshot_id)
        if report.preferences_snapshot_id is not None
        else {}
    )
    margins = [m for m in wh.column(DPO, "margin", at=at).to_pylist() if m is not None]
    return table_result(
        wh,
        DPO,
        report.snapshot_id,
        metadata=table_metadata(
            wh,
            DPO,
            snapshot_id=report.snapshot_id,
            seconds=0.0,
            rows_processed=report.rows,
            bytes_processed=0,
            extra={
                "pairs": report.rows,
                "margin_histogram": dg.MetadataValue.md(pref_checks.margin_histogram(margins)),
            },
        ),
        checks={
            "prompts_not_contaminated": pref_checks.prompts_clean(wh, DPO, decontam, at),
            "chosen_differs": pref_checks.sides_differ(wh, DPO, at),
        },
    )
