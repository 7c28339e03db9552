"""Checks on ``gold.rl_prompts`` as written: the verifiers read back from the table work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from posttrain.platform.checks import CheckOutcome
from posttrain.platform.errors import PosttrainError
from posttrain.platform.rl.build import RL_PROMPTS
from posttrain.platform.rl.verifiers import VerifierResult, parse_verifier
from posttrain.platform.warehouse import Warehouse


def _verify_reference(row: dict[str, str]) -> VerifierResult:
    try:
        verifier = parse_verifier(
            row["verifier_kind"], row["verifier_spec"], prompt_id=row["prompt_id"]
        )
    except PosttrainError as exc:
        return VerifierResult.of(False, str(exc))
    return verifier.verify(row["reference"])


def references_pass(
    warehouse: Warehouse, snapshot_id: int | None, workers: int | None = None
) -> CheckOutcome:
    """Every verifier of ``gold.rl_prompts`` at ``snapshot_id`` passes its stored reference.

    Reads the rows back (kind, spec and reference as stored, not as built), so a spec that
    did not survive the round trip through Iceberg is caught too.
    """
    if snapshot_id is None:
        return CheckOutcome(True, "gold.rl_prompts is empty", {"rows": 0})
    rows = warehouse.read(
        RL_PROMPTS,
        columns=("prompt_id", "verifier_kind", "verifier_spec", "reference"),
        snapshot_id=snapshot_id,
    ).to_pylist()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rl-check") as pool:
        results = list(pool.map(_verify_reference, rows))
    failed = [
        (row["prompt_id"], r.why) for row, r in zip(rows, results, strict=True) if not r.passed
    ]
    metadata: dict[str, int | float | str] = {
        "rows": len(rows),
        "failed": len(failed),
        "pass_rate": round(1 - len(failed) / len(rows), 4) if rows else 1.0,
    }
    if failed:
        sample = "; ".join(f"{pid}: {why}" for pid, why in failed[:3])
        return CheckOutcome(
            False, f"{len(failed)} verifiers fail their reference: {sample}", metadata
        )
    return CheckOutcome(True, f"all {len(rows):,} verifiers pass their reference", metadata)
