"""``gold/sft`` and ``gold/sft_packed``: SFT corpora that TRL and Axolotl read as they are."""

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
from posttrain.platform.gold.build import (
    ROLLOUTS,
    SFT,
    SFT_PACKED,
    SILVER,
    GoldSftConfig,
    build_gold_packed,
    build_gold_sft,
)
from posttrain.platform.gold.packing import PackConfig
from posttrain.platform.lineage import inputs_from_summary
from posttrain.resources import RayResource, TokenizerResource, WarehouseResource


class GoldSftBuildConfig(dg.Config):
    """Checks on what reaches gold."""

    max_contamination_rate: float = Field(
        default=0.0,
        description="Block downstream when more of gold.sft than this overlaps a benchmark.",
    )


@dg.multi_asset(
    pool=WRITER_POOLS["gold"],
    specs=[table_spec(SFT, group="gold", deps=[SILVER, ROLLOUTS])],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_match_silver",
            asset=table_key(SFT),
            blocking=True,
            description="gold.sft holds exactly silver.conversations and the kept rollouts",
        ),
        dg.AssetCheckSpec(
            "contamination_within_bounds",
            asset=table_key(SFT),
            blocking=True,
            description="share of rows overlapping an eval benchmark ≤ the set rate",
        ),
        *integrity_check_specs(SFT),
    ],
)
def gold_sft(config: GoldSftBuildConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Each kept conversation in TRL's conversational format (``messages``), with provenance."""
    wh = warehouse.open()
    report = build_gold_sft(wh)
    at: dict[str, int | None] = {SILVER: report.silver_snapshot_id, SFT: report.snapshot_id}
    # The silver.rollouts snapshot gold.sft took its kept rollouts from, as it recorded it.
    at[ROLLOUTS] = inputs_from_summary(wh.snapshot_summary(SFT, report.snapshot_id)).get(ROLLOUTS)
    # Re-check with the n-gram settings silver decontaminated with, not the defaults.
    silver_decontam = DecontamConfig.recorded(
        wh.snapshot_summary(SILVER, report.silver_snapshot_id)
    )
    contamination = checks.contamination_at_most(
        wh, SFT, silver_decontam, config.max_contamination_rate, at=at
    )
    return table_result(
        wh,
        SFT,
        report.snapshot_id,
        metadata=table_metadata(
            wh,
            SFT,
            snapshot_id=report.snapshot_id,
            committed=not report.skipped,
            seconds=report.seconds,
            rows_processed=report.rows,
            bytes_processed=report.input_bytes,
        ),
        checks={
            "rows_match_silver": checks.sft_records(wh, at=at),
            "contamination_within_bounds": contamination,
        },
    )


class PackBuildConfig(dg.Config):
    """Sequence length and the packing-efficiency floor."""

    seq_length: int = Field(
        default=PackConfig().seq_length, gt=0, description="Tokens per packed sequence."
    )
    min_efficiency: float = Field(default=0.95, description="Warn below this packing efficiency.")


@dg.multi_asset(
    pool=WRITER_POOLS["gold"],
    specs=[table_spec(SFT_PACKED, group="gold", deps=[SFT])],
    check_specs=[
        dg.AssetCheckSpec("every_record_packed_once", asset=table_key(SFT_PACKED), blocking=True),
        dg.AssetCheckSpec("packs_fit_seq_length", asset=table_key(SFT_PACKED), blocking=True),
        *integrity_check_specs(SFT_PACKED),
        dg.AssetCheckSpec("packing_efficiency", asset=table_key(SFT_PACKED)),
    ],
)
def gold_sft_packed(
    context: dg.AssetExecutionContext,
    config: PackBuildConfig,
    warehouse: WarehouseResource,
    ray: RayResource,
    tokenizer: TokenizerResource,
) -> dg.MaterializeResult:
    """``gold.sft`` tokenized with the chat template (loss on assistant tokens only) and
    packed best-fit-decreasing into padding-free sequences: ``input_ids``,
    ``assistant_masks``, ``seq_lengths`` and the source ``record_ids``."""
    gold_config = GoldSftConfig(
        tokenize=tokenizer.tokenize_config(), pack=PackConfig(seq_length=config.seq_length)
    )
    wh = warehouse.open()
    report = build_gold_packed(wh, gold_config, ray.executor_for(context))
    stats = report.stats
    if report.skipped:
        context.log.info(f"packing {report.pack_key} already holds this gold.sft snapshot")
    context.log.info(
        f"packed {stats.examples:,} conversations into {stats.packs:,} sequences of "
        f"{stats.seq_length} tokens, efficiency {stats.efficiency:.2%}"
    )
    # One pack is as full as the data allows; only a floor over many packs is meaningful.
    floor = config.min_efficiency if stats.packs > 1 else 0.0
    efficiency = checks.share_at_least("pack capacity holding real tokens", stats.efficiency, floor)
    at: dict[str, int | None] = {SFT: report.sft_snapshot_id, SFT_PACKED: report.snapshot_id}
    return table_result(
        wh,
        SFT_PACKED,
        report.snapshot_id,
        metadata=table_metadata(
            wh,
            SFT_PACKED,
            snapshot_id=report.snapshot_id,
            committed=not report.skipped,
            seconds=report.seconds,
            rows_processed=report.examples,
            bytes_processed=report.input_bytes,
            extra={
                "packing_efficiency": round(stats.efficiency, 6),
                "tokens": stats.tokens,
                "tokens_per_s": round(stats.tokens / max(report.seconds, 1e-9), 1),
                "tokenizer": gold_config.tokenize.tokenizer,
                "pack_key": report.pack_key,
                "reused_existing_packing": report.skipped,
                "refused_by_tokenizer": dg.MetadataValue.json(report.refused),
                "truncated_by_tokenizer": report.truncated,
                **{f"packing/{k}": v for k, v in stats.as_metadata().items()},
            },
        ),
        checks={
            "every_record_packed_once": checks.packs_cover_records(
                wh, report.dropped_record_ids, at=at, pack_key=report.pack_key
            ),
            "packs_fit_seq_length": checks.packs_fit(
                wh, config.seq_length, at=at, pack_key=report.pack_key
            ),
        },
        warnings={"packing_efficiency": efficiency},
    )
