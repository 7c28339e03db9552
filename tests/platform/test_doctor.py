"""``posttrain doctor``: finds what a crash between two commits leaves, repairs what is safe."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform import checks
from posttrain.platform.doctor import diagnose, repair
from posttrain.platform.errors import CommitConflictError
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import REPAIR_KEY, Lineage
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse


@pytest.fixture
def built(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """Bronze and silver built from five distinct conversations and one malformed line."""
    seed_humaneval(warehouse)
    path = tmp_path / "chats.jsonl"
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Which planet is number {n} from the sun?"},
                    {"role": "assistant", "content": f"Planet number {n} is {name}."},
                ]
            }
        )
        for n, name in enumerate(("Mercury", "Venus", "Earth", "Mars", "Jupiter"), start=1)
    ]
    path.write_text("\n".join([*lines, "{not json"]) + "\n")
    ingest(warehouse, [SourceSpec(path=path, source="planets")])
    build_silver(warehouse, SilverConfig(), InProcessExecutor())
    return warehouse


def _rejection(record_id: str, reason: str = "empty", kept: str | None = None) -> pa.Table:
    columns = {name: pa.nulls(1) for name in SILVER_REJECTIONS.names}
    columns |= {
        "record_id": pa.array([record_id]),
        "reason": pa.array([reason]),
        "detail": pa.array(["planted by the test"]),
        "kept_record_id": pa.array([kept], pa.string()),
    }
    return pa.table(columns).cast(SILVER_REJECTIONS)


def test_a_healthy_warehouse_has_no_findings(built: Warehouse) -> None:
    diagnosis = diagnose(built)
    assert diagnosis.healthy and diagnosis.pending == 0


def test_preference_records_are_not_pending_for_silver(built: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    pair = {"prompt": "Which planet is largest?", "chosen": "Jupiter.", "rejected": "Mars."}
    path.write_text(json.dumps(pair) + "\n")
    ingest(built, [SourceSpec(path=path, source="pairs")])
    build_silver(built, SilverConfig(), InProcessExecutor())
    diagnosis = diagnose(built)
    assert diagnosis.healthy and diagnosis.pending == 0


def test_duplicate_bronze_rows_are_found_and_deduplicated_with_a_recorded_repair(
    built: Warehouse,
) -> None:
    twice = built.read("bronze.records", limit=2)
    built.append("bronze.records", twice, Lineage("a crashed ingest"))
    assert not checks.keys_unique(built, "bronze.records").passed

    diagnosis = diagnose(built)
    (finding,) = diagnosis.findings
    assert finding.table == "bronze.records" and len(finding.record_ids) == 2

    (made,) = repair(built, diagnosis)
    assert made.rows_removed == 2
    assert checks.keys_unique(built, "bronze.records").passed
    assert built.info("bronze.records").rows == 6
    assert "one row kept per record_id" in built.snapshot_summary("bronze.records")[REPAIR_KEY]
    assert diagnose(built).healthy


def test_silver_rows_not_in_bronze_are_removed(built: Warehouse) -> None:
    built.append("silver.rejections", _rejection("no-such-record"), Lineage("by hand"))
    diagnosis = diagnose(built)
    assert [f.problem for f in diagnosis.findings] == ["records not in bronze.records"]
    repair(built, diagnosis)
    assert "no-such-record" not in built.column("silver.rejections", "record_id").to_pylist()
    assert diagnose(built).healthy


def test_a_record_in_both_silver_tables_is_processed_again_by_the_next_build(
    built: Warehouse,
) -> None:
    kept = built.column("silver.conversations", "record_id")[0].as_py()
    built.append("silver.rejections", _rejection(kept), Lineage("a crashed build"))
    assert not checks.rows_conserved(built).passed

    diagnosis = diagnose(built)
    assert "records both kept and rejected" in [f.problem for f in diagnosis.findings]
    repair(built, diagnosis)
    assert diagnose(built).pending == 1

    report = build_silver(built, SilverConfig(), InProcessExecutor())
    assert (report.rows_in, report.kept) == (1, 1)
    assert checks.rows_conserved(built).passed
    assert diagnose(built).healthy


def test_a_duplicate_pointing_to_a_record_silver_does_not_keep_is_found(
    built: Warehouse,
) -> None:
    malformed = next(
        row["record_id"]
        for row in built.read("silver.rejections").to_pylist()
        if row["reason"] == "malformed"
    )
    built.table("silver.rejections").delete(f"record_id = '{malformed}'")
    built.append(
        "silver.rejections",
        _rejection(malformed, "exact_dup", kept="gone"),
        Lineage("by hand"),
    )
    assert not checks.duplicates_point_to_kept(built).passed
    diagnosis = diagnose(built)
    assert [f.problem for f in diagnosis.findings] == [
        "duplicates of a record silver does not keep"
    ]
    repair(built, diagnosis)
    build_silver(built, SilverConfig(), InProcessExecutor())
    assert checks.duplicates_point_to_kept(built).passed
    assert diagnose(built).healthy


def test_a_repair_planned_on_an_old_snapshot_writes_nothing(built: Warehouse) -> None:
    built.append("silver.rejections", _rejection("no-such-record"), Lineage("by hand"))
    diagnosis = diagnose(built)
    built.append("silver.rejections", _rejection("another-one"), Lineage("by hand"))

    with pytest.raises(CommitConflictError, match="re-running is safe"):
        repair(built, diagnosis)
    assert "no-such-record" in built.column("silver.rejections", "record_id").to_pylist()
