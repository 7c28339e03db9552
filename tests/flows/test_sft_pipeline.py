"""The SFT medallion end to end, as Dagster materializes it, on the shipped sample data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from posttrain.platform import checks
from posttrain.platform.decontam import DecontamConfig
from posttrain.platform.lineage import CODE_VERSION_KEY, CONFIG_HASH_KEY, INPUT_PREFIX
from posttrain.platform.silver.pipeline import chat_rows
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import RayResource

pytestmark = pytest.mark.slow

PLANTED = Path(__file__).resolve().parents[2] / "data" / "samples" / "planted.json"


def open_home(home: Path) -> Warehouse:
    return Warehouse(WarehouseSettings.local(home))


def _gold_file_digests(warehouse: Warehouse) -> dict[str, list[str]]:
    """SHA-256 of every data file of each gold table's current snapshot."""
    digests = {}
    for name in ("gold.sft", "gold.sft_packed"):
        paths = [task.file.file_path for task in warehouse.table(name).scan().plan_files()]
        digests[name] = sorted(
            hashlib.sha256(Path(path.removeprefix("file://")).read_bytes()).hexdigest()
            for path in paths
        )
    return digests


def test_every_table_is_populated(pipeline_home: Path) -> None:
    warehouse = open_home(pipeline_home)
    for name in (
        "bronze.records",
        "eval.humaneval",
        "silver.conversations",
        "silver.rejections",
        "gold.sft",
        "gold.sft_packed",
    ):
        assert warehouse.info(name).rows > 0, name


def test_bronze_rows_equal_silver_plus_rejections(pipeline_home: Path) -> None:
    warehouse = open_home(pipeline_home)
    outcome = checks.rows_conserved(warehouse)
    assert outcome.passed, outcome.description
    assert checks.rollouts_conserved(warehouse).passed
    # Rollouts are silver.rollouts' to account for, preference records silver.preferences'.
    bronze = warehouse.read("bronze.records", columns=("record_id", "format"))
    rollouts = bronze.filter(pc.fill_null(pc.equal(bronze["format"], "rollout"), False))
    assert rollouts.num_rows == (
        warehouse.info("silver.rollouts").rows + warehouse.info("silver.rollout_rejections").rows
    )
    assert chat_rows(bronze).num_rows == (
        warehouse.info("silver.conversations").rows + warehouse.info("silver.rejections").rows
    )


def test_every_rejection_reason_planted_in_the_samples_is_found(pipeline_home: Path) -> None:
    reasons = set(open_home(pipeline_home).read("silver.rejections")["reason"].to_pylist())
    assert {"exact_dup", "near_dup", "contaminated", "malformed"} <= reasons


def test_planted_humaneval_items_do_not_reach_gold(pipeline_home: Path) -> None:
    warehouse = open_home(pipeline_home)
    outcome = checks.contamination_at_most(warehouse, "gold.sft", DecontamConfig(), 0.0)
    assert outcome.passed, outcome.description


def test_secrets_are_redacted_before_gold(pipeline_home: Path) -> None:
    gold = open_home(pipeline_home).read("gold.sft", columns=("messages",))
    text = json.dumps(gold["messages"].to_pylist())
    for leaked in ("AKIA", "ghp_", "sk-proj-"):
        assert leaked not in text
    silver = open_home(pipeline_home).read("silver.conversations", columns=("redactions",))
    assert sum(len(counts) for counts in silver["redactions"].to_pylist()) > 0


def test_snapshots_record_inputs_config_hash_and_code_version(pipeline_home: Path) -> None:
    warehouse = open_home(pipeline_home)
    summary = warehouse.snapshot_summary("silver.conversations")
    assert summary[INPUT_PREFIX + "bronze.records"] == str(warehouse.snapshot_id("bronze.records"))
    assert summary[INPUT_PREFIX + "eval.humaneval"] == str(warehouse.snapshot_id("eval.humaneval"))
    assert summary[CONFIG_HASH_KEY]
    assert summary[CODE_VERSION_KEY].startswith("0.")
    packed = warehouse.snapshot_summary("gold.sft_packed")
    assert packed[INPUT_PREFIX + "gold.sft"] == str(warehouse.snapshot_id("gold.sft"))


def test_rematerializing_adds_no_bronze_rows_and_keeps_silver(
    pipeline_home: Path, materialize
) -> None:
    warehouse = open_home(pipeline_home)
    before = {
        name: warehouse.info(name).rows for name in ("bronze.records", "silver.conversations")
    }
    result = materialize(
        pipeline_home, selection=["bronze/records", "silver/conversations", "silver/rejections"]
    )
    assert result.success
    after = {name: warehouse.info(name).rows for name in before}
    assert after == before
    assert checks.rows_conserved(warehouse).passed


def test_same_inputs_give_byte_identical_gold_files(
    tmp_path: Path, pipeline_home: Path, materialize
) -> None:
    result = materialize(tmp_path / "again")
    assert result.success
    assert _gold_file_digests(open_home(tmp_path / "again")) == _gold_file_digests(
        open_home(pipeline_home)
    )


def test_ray_and_in_process_runs_give_identical_gold(
    tmp_path: Path, pipeline_home: Path, ray_runtime: None, materialize
) -> None:
    result = materialize(tmp_path / "ray", ray=RayResource(mode="ray"))
    assert result.success
    assert _gold_file_digests(open_home(tmp_path / "ray")) == _gold_file_digests(
        open_home(pipeline_home)
    )


def test_asset_metadata_reports_counts_and_costs(
    pipeline_run: tuple[Path, dg.ExecuteInProcessResult],
) -> None:
    result = pipeline_run[1]
    by_key = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    rejections = by_key["silver/rejections"]
    assert rejections["exact_duplicates"].value > 0
    assert rejections["decontam/contaminated"].value > 0
    packed = by_key["gold/sft_packed"]
    assert packed["packing_efficiency"].value > 0.9
    for metadata in by_key.values():
        for figure in (
            "dagster/row_count",
            "snapshot_id",
            "duration_s",
            "rows_per_s",
            "mb_per_s",
            "bytes_written",
        ):
            assert figure in metadata


def test_contamination_reaching_gold_blocks_the_packed_corpus(
    pipeline_home: Path, tmp_path: Path, materialize
) -> None:
    import shutil

    home = tmp_path / "blocked"
    shutil.copytree(pipeline_home, home)
    warehouse = open_home(home)
    # A benchmark published after silver was built: one of gold's own conversations.
    leaked = warehouse.read("gold.sft", columns=("record_id", "messages"), limit=3)
    texts = ["\n".join(m["content"] for m in row) for row in leaked["messages"].to_pylist()]
    warehouse.catalog.create_table(
        "eval.leaked_bench",
        schema=pa.schema(
            [pa.field("item_id", pa.string(), nullable=False), pa.field("question", pa.string())]
        ),
    ).append(
        pa.table(
            {"item_id": ["q1", "q2", "q3"], "question": texts},
            schema=pa.schema(
                [
                    pa.field("item_id", pa.string(), nullable=False),
                    pa.field("question", pa.string()),
                ]
            ),
        )
    )
    packed_before = warehouse.snapshot_id("gold.sft_packed")

    result = materialize(home, selection=["gold/sft", "gold/sft_packed"])

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["contamination_within_bounds"].passed
    assert open_home(home).snapshot_id("gold.sft_packed") == packed_before


def test_packed_gold_holds_every_record_once(pipeline_home: Path) -> None:
    warehouse = open_home(pipeline_home)
    packed = warehouse.read("gold.sft_packed", columns=("record_ids",))
    placed = pc.list_flatten(packed["record_ids"])
    assert len(placed) == len(pc.unique(placed))
    assert checks.packs_fit(warehouse, 2048).passed


def test_a_run_with_nothing_new_reports_the_snapshots_it_kept_and_commits_nothing(
    pipeline_home: Path, materialize
) -> None:
    warehouse = open_home(pipeline_home)
    tables = ("silver.conversations", "silver.rejections", "gold.sft", "gold.sft_packed")
    before = warehouse.pin(*tables)

    result = materialize(pipeline_home, selection=[name.replace(".", "/") for name in tables])

    assert result.success
    assert warehouse.pin(*tables) == before
    by_key = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    for name in tables:
        metadata = by_key[name.replace(".", "/")]
        assert metadata["snapshot_id"].value == str(before[name])
        assert metadata["bytes_written"].value == 0
