"""``silver/conversations`` and ``silver/rejections``: clean conversations, and why the
rest was refused."""

import dagster as dg
from pydantic import Field

from posttrain.assets._support import (
    WRITER_POOLS,
    integrity_check_specs,
    table_key,
    table_metadata,
    table_result,
    table_spec,
)
from posttrain.platform import checks
from posttrain.platform.decontam import DecontamConfig
from posttrain.platform.dedup import DedupConfig
from posttrain.platform.evals import benchmark_tables
from posttrain.platform.messages import TextView
from posttrain.platform.schemas import TableName
from posttrain.platform.silver.pipeline import CONVERSATIONS, REJECTIONS, SilverConfig, build_silver
from posttrain.resources import RayResource, WarehouseResource

_DEFAULT_DEDUP = DedupConfig()
# Silver decontaminates against every registered benchmark: each eval.* table is an input.
_INPUTS = [TableName.BRONZE_RECORDS, *benchmark_tables()]


class SilverBuildConfig(dg.Config):
    """The knobs people turn most; everything else keeps the platform defaults."""

    full_refresh: bool = Field(
        default=False, description="Rebuild silver from all of bronze instead of the new records."
    )
    near_dup_threshold: float = Field(
        default=_DEFAULT_DEDUP.threshold,
        description="Estimated Jaccard similarity from which two records are near duplicates.",
    )
    dedup_text_view: TextView = Field(
        default=_DEFAULT_DEDUP.text_view,
        description="Text compared: all turns, prompt (system/user/tool) or response.",
    )
    drop_whole_cluster: bool = Field(
        default=False,
        description="Refuse every new member of a duplicate cluster, keeper included.",
    )
    decontam_ngram: int = Field(
        default=DecontamConfig().ngram,
        description="Words per n-gram shared with a benchmark item that make a record "
        "contaminated; gold's contamination check uses the same.",
    )
    max_dedup_ratio: float = Field(
        default=0.5, description="Warn when more than this share of new records are duplicates."
    )

    def silver_config(self) -> SilverConfig:
        """The platform config; raises ``ValidationError`` on a bad value, before any write."""
        dedup = _DEFAULT_DEDUP.model_dump() | {
            "threshold": self.near_dup_threshold,
            "text_view": self.dedup_text_view,
            "drop_whole_cluster": self.drop_whole_cluster,
        }
        return SilverConfig(
            dedup=DedupConfig.model_validate(dedup),
            decontam=DecontamConfig(ngram=self.decontam_ngram),
        )


@dg.multi_asset(
    pool=WRITER_POOLS["silver"],
    specs=[
        table_spec(CONVERSATIONS, group="silver", deps=_INPUTS),
        table_spec(REJECTIONS, group="silver", deps=_INPUTS),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_conserved",
            asset=table_key(CONVERSATIONS),
            blocking=True,
            description="bronze rows = silver rows + rejections, record by record",
        ),
        *integrity_check_specs(CONVERSATIONS),
        dg.AssetCheckSpec("duplicates_point_to_kept", asset=table_key(REJECTIONS), blocking=True),
        *integrity_check_specs(REJECTIONS),
        dg.AssetCheckSpec("dedup_ratio_within_bounds", asset=table_key(REJECTIONS)),
    ],
)
def silver_tables(
    context: dg.AssetExecutionContext,
    config: SilverBuildConfig,
    warehouse: WarehouseResource,
    ray: RayResource,
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """Parse, filter, redact, decontaminate and deduplicate the bronze records.

    Every bronze record lands in exactly one of the two tables; rejections carry the reason
    code, a detail, and for duplicates the kept record's id and the estimated similarity.
    """
    silver_config = config.silver_config()  # validated before anything is read
    wh = warehouse.open()
    report = build_silver(
        wh,
        silver_config,
        ray.executor_for(context),
        full_refresh=config.full_refresh,
        log=context.log.info,
    )
    context.log.info(
        f"silver ({report.mode}): {report.rows_in:,} records in, {report.kept:,} kept, "
        f"rejected {report.rejected_by_reason}"
    )
    common = {"mode": report.mode, "rows_in": report.rows_in}
    # Everything below reads the snapshots this build read and wrote, not "current".
    at = {**report.read, **report.written}
    conversations = table_metadata(
        wh,
        CONVERSATIONS,
        snapshot_id=at[CONVERSATIONS],
        committed=at[CONVERSATIONS] != report.read[CONVERSATIONS],
        seconds=report.seconds,
        rows_processed=report.rows_in,
        bytes_processed=report.input_bytes,
        extra={
            **common,
            "kept": report.kept,
            "redactions": dg.MetadataValue.json(report.redactions_by_kind),
            **{f"dedup/{k}": v for k, v in report.dedup.as_metadata().items()},
        },
    )
    rejections = table_metadata(
        wh,
        REJECTIONS,
        snapshot_id=at[REJECTIONS],
        committed=at[REJECTIONS] != report.read[REJECTIONS],
        seconds=report.seconds,
        rows_processed=report.rows_in,
        bytes_processed=report.input_bytes,
        extra={
            **common,
            "rejected": report.rejected,
            "rejected_by_reason": dg.MetadataValue.json(report.rejected_by_reason),
            "exact_duplicates": report.dedup.exact_duplicates,
            "near_duplicates": report.dedup.near_duplicates,
            **{f"decontam/{k}": v for k, v in report.contamination.metadata().items()},
        },
    )
    duplicates = report.dedup.exact_duplicates + report.dedup.near_duplicates
    dedup_rate = checks.rate_at_most(
        "duplicates among new records", duplicates, report.rows_in, config.max_dedup_ratio
    )
    return (
        table_result(
            wh,
            CONVERSATIONS,
            at[CONVERSATIONS],
            metadata=conversations,
            checks={"rows_conserved": checks.rows_conserved(wh, at=at)},
        ),
        table_result(
            wh,
            REJECTIONS,
            at[REJECTIONS],
            metadata=rejections,
            checks={"duplicates_point_to_kept": checks.duplicates_point_to_kept(wh, at=at)},
            warnings={"dedup_ratio_within_bounds": dedup_rate},
        ),
    )
