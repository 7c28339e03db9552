"""``gold/rl_prompts``: RL tasks with verifiers proven on their references; ``silver/rollouts``:
RL rollouts that re-enter as SFT rows (reward threshold) and DPO pairs (reward gap, written
to ``silver.preferences`` with origin ``rollouts``, whence ``gold/dpo`` takes them)."""

from typing import Any

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
from posttrain.platform.evals import benchmark_tables
from posttrain.platform.rl.build import (
    HUMANEVAL_TABLE,
    RL_PROMPTS,
    RL_REJECTIONS,
    SILVER,
    RlPromptsConfig,
    build_rl_prompts,
)
from posttrain.platform.rl.checks import references_pass
from posttrain.platform.rl.rollouts import (
    BRONZE,
    PREFERENCES,
    ROLLOUT_REJECTIONS,
    ROLLOUTS,
    RolloutConfig,
    build_rollouts,
)
from posttrain.resources import RayResource, WarehouseResource


class RlPromptsBuildConfig(dg.Config):
    """Which tasks seed gold.rl_prompts."""

    humaneval: bool = Field(default=True, description="Seed the 164 HumanEval problems.")
    math_sources: list[str] = Field(
        default=["math-tutor"], description="silver.conversations sources of math problems."
    )
    timeout_s: float = Field(default=10.0, description="Wall-time limit of one test run.")


@dg.multi_asset(
    pool=WRITER_POOLS["gold"],
    specs=[
        table_spec(RL_PROMPTS, group="rl", deps=[SILVER, HUMANEVAL_TABLE]),
        table_spec(RL_REJECTIONS, group="rl", deps=[SILVER, HUMANEVAL_TABLE]),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "verifiers_pass_references",
            asset=table_key(RL_PROMPTS),
            blocking=True,
            description="every verifier, read back from the table, passes its reference",
        ),
        *integrity_check_specs(RL_PROMPTS),
        *integrity_check_specs(RL_REJECTIONS),
    ],
)
def gold_rl_prompts(
    config: RlPromptsBuildConfig, warehouse: WarehouseResource
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """HumanEval problems (their tests run in a sandbox) and the math problems of silver
    (numeric answers), each a TRL conversational ``prompt`` with a verifier as data."""
    wh = warehouse.open()
    settings = RlPromptsConfig(
        humaneval=config.humaneval,
        math_sources=tuple(config.math_sources),
        timeout_s=config.timeout_s,
    )
    report = build_rl_prompts(wh, settings)
    verified = references_pass(wh, report.snapshot_id)
    reasons: dict[str, int] = {}
    for rejection in report.rejections:
        reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
    prompts = table_result(
        wh,
        RL_PROMPTS,
        report.snapshot_id,
        metadata=table_metadata(
            wh,
            RL_PROMPTS,
            snapshot_id=report.snapshot_id,
            seconds=report.seconds,
            rows_processed=report.tasks + len(report.rejections),
            bytes_processed=0,
            extra={
                "verifier_kinds": dg.MetadataValue.json(report.kinds),
                "reference_pass_rate": round(report.reference_pass_rate, 4),
                "build_time_s": round(report.seconds, 2),
                "verify_time_s": round(report.check_seconds, 2),
                "slowest_reference_s": round(report.slowest_reference_seconds, 2),
                "rejections": len(report.rejections),
            },
        ),
        checks={"verifiers_pass_references": verified},
    )
    rejections = table_result(
        wh,
        RL_REJECTIONS,
        report.rejections_snapshot_id,
        metadata=table_metadata(
            wh,
            RL_REJECTIONS,
            snapshot_id=report.rejections_snapshot_id,
            seconds=report.seconds,
            rows_processed=len(report.rejections),
            bytes_processed=0,
            extra={"reasons": dg.MetadataValue.json(reasons)},
        ),
    )
    return prompts, rejections


class RolloutsBuildConfig(dg.Config):
    """Rejection sampling and pairing thresholds (recorded in the snapshots' config hash)."""

    sft_min_reward: float = Field(
        default=RolloutConfig().sft_min_reward,
        description="Rollouts with at least this reward become SFT rows (rejection sampling).",
    )
    dpo_min_gap: float = Field(
        default=RolloutConfig().dpo_min_gap,
        description="Two rollouts of one prompt whose rewards differ by this much make a pair.",
    )
    pairing_rule: str = Field(
        default=RolloutConfig().pairing_rule,
        description="best_vs_worst (one pair per prompt) or all_pairs.",
    )

    def rollout_config(self) -> RolloutConfig:
        """The platform config; a bad value fails here, before anything is written."""
        return RolloutConfig.model_validate(
            {
                "sft_min_reward": self.sft_min_reward,
                "dpo_min_gap": self.dpo_min_gap,
                "pairing_rule": self.pairing_rule,
            }
        )


_ROLLOUT_INPUTS = [BRONZE, RL_PROMPTS, SILVER, *benchmark_tables()]


@dg.multi_asset(
    pool=WRITER_POOLS["silver"],
    specs=[
        table_spec(ROLLOUTS, group="rl", deps=_ROLLOUT_INPUTS),
        table_spec(ROLLOUT_REJECTIONS, group="rl", deps=_ROLLOUT_INPUTS),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rollouts_conserved",
            asset=table_key(ROLLOUTS),
            blocking=True,
            description="bronze rollouts = silver.rollouts + silver.rollout_rejections",
        ),
        *integrity_check_specs(ROLLOUTS),
        *integrity_check_specs(ROLLOUT_REJECTIONS),
    ],
)
def silver_rollouts(
    context: dg.AssetExecutionContext,
    config: RolloutsBuildConfig,
    warehouse: WarehouseResource,
    ray: RayResource,
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """RL rollouts re-enter: each bronze rollout scored (given reward or its prompt's
    verifier), rejection-sampled into SFT rows for gold.sft above a reward threshold, and
    paired by reward gap into DPO pairs (the ``rollouts`` rows of silver.preferences, which
    gold.dpo takes); bad rollouts are rejections with a reason."""
    settings = config.rollout_config()
    wh = warehouse.open()
    report = build_rollouts(wh, settings, ray.executor_for(context))
    context.log.info(
        f"rollouts: {report.rollouts_in:,} in, {report.valid:,} scored, "
        f"{report.sft_rows:,} SFT rows, {report.pairs:,} pairs, "
        f"rejected {report.rejected_by_reason}"
    )

    at = {**report.inputs, **report.snapshot_ids}  # what the run read and wrote

    def metadata(table: str, extra: dict[str, Any]) -> dict[str, Any]:
        return table_metadata(
            wh,
            table,
            snapshot_id=report.snapshot_ids[table],
            seconds=report.seconds,
            rows_processed=report.rollouts_in,
            bytes_processed=0,
            extra={"config_hash": settings.config_hash(), **extra},
        )

    rollouts = table_result(
        wh,
        ROLLOUTS,
        report.snapshot_ids[ROLLOUTS],
        metadata=metadata(
            ROLLOUTS,
            {
                "reward_histogram": dg.MetadataValue.json(report.reward_histogram),
                "reward_sources": dg.MetadataValue.json(report.reward_sources),
                "mean_reward_by_checkpoint": dg.MetadataValue.json(report.rewards_by_checkpoint),
                "sft_rows_derived": report.sft_rows,
                "sft_status": dg.MetadataValue.json(report.sft_status),
                "sft_min_reward": settings.sft_min_reward,
                "pairs_derived": report.pairs,
                "pairs_refused": dg.MetadataValue.json(report.pairs_refused),
                "pairing_rule": settings.rule_name(),
                # The rollouts rows of silver.preferences, as written (gold.dpo takes them).
                "preferences_snapshot_id": str(report.snapshot_ids[PREFERENCES]),
            },
        ),
        checks={"rollouts_conserved": checks.rollouts_conserved(wh, at=at)},
    )
    rejections = table_result(
        wh,
        ROLLOUT_REJECTIONS,
        report.snapshot_ids[ROLLOUT_REJECTIONS],
        metadata=metadata(
            ROLLOUT_REJECTIONS,
            {"rejected_by_reason": dg.MetadataValue.json(report.rejected_by_reason)},
        ),
    )
    return rollouts, rejections
