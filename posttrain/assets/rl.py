"""``gold/rl_prompts``: RL tasks with verifiers proven on their references."""

import dagster as dg
from pydantic import Field

from posttrain.assets._support import (
    WRITER_POOLS,
    check_result,
    integrity_check_results,
    integrity_check_specs,
    table_key,
    table_metadata,
    table_spec,
)
from posttrain.platform.rl.build import (
    HUMANEVAL_TABLE,
    RL_PROMPTS,
    RL_REJECTIONS,
    SILVER,
    RlPromptsConfig,
    build_rl_prompts,
)
from posttrain.platform.rl.checks import references_pass
from posttrain.resources import WarehouseResource


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
    prompts: dg.MaterializeResult = dg.MaterializeResult(
        asset_key=table_key(RL_PROMPTS),
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
        check_results=[
            check_result(verified, asset=RL_PROMPTS, check_name="verifiers_pass_references"),
            *integrity_check_results(wh, RL_PROMPTS, report.snapshot_id),
        ],
    )
    rejections: dg.MaterializeResult = dg.MaterializeResult(
        asset_key=table_key(RL_REJECTIONS),
        metadata=table_metadata(
            wh,
            RL_REJECTIONS,
            snapshot_id=report.rejections_snapshot_id,
            seconds=report.seconds,
            rows_processed=len(report.rejections),
            bytes_processed=0,
            extra={"reasons": dg.MetadataValue.json(reasons)},
        ),
        check_results=integrity_check_results(wh, RL_REJECTIONS, report.rejections_snapshot_id),
    )
    return prompts, rejections
