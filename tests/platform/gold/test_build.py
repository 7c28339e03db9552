"""Gold builds: pinned to the snapshot they read, idle when nothing is new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed, build_gold_sft
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import inputs_from_summary
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse

GOLD = ("gold.sft", "gold.sft_packed")


@pytest.fixture
def with_silver(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    seed_humaneval(warehouse)
    path = tmp_path / "chats.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"How many legs do {n} spiders have?"},
                        {"role": "assistant", "content": f"{n} spiders have {8 * n} legs."},
                    ]
                }
            )
            for n in range(1, 6)
        )
        + "\n"
    )
    ingest(warehouse, [SourceSpec(path=path, source="spiders")])
    build_silver(warehouse, SilverConfig(), InProcessExecutor())
    return warehouse


def test_gold_records_the_silver_snapshot_it_read(with_silver: Warehouse) -> None:
    silver = with_silver.snapshot_id("silver.conversations")
    sft = build_gold_sft(with_silver)
    packed = build_gold_packed(with_silver, GoldSftConfig(), InProcessExecutor())
    assert sft.silver_snapshot_id == silver
    summary = with_silver.snapshot_summary("gold.sft", sft.snapshot_id)
    assert inputs_from_summary(summary) == {"silver.conversations": silver}
    assert packed.sft_snapshot_id == sft.snapshot_id
    assert inputs_from_summary(with_silver.snapshot_summary("gold.sft_packed")) == {
        "gold.sft": sft.snapshot_id
    }


def test_a_gold_build_with_nothing_new_commits_nothing(with_silver: Warehouse) -> None:
    build_gold_sft(with_silver)
    build_gold_packed(with_silver, GoldSftConfig(), InProcessExecutor())
    before = with_silver.pin(*GOLD)
    history = {name: len(with_silver.table(name).snapshots()) for name in GOLD}

    sft = build_gold_sft(with_silver)
    packed = build_gold_packed(with_silver, GoldSftConfig(), InProcessExecutor())

    assert sft.skipped and packed.skipped
    assert (sft.snapshot_id, packed.snapshot_id) == (before["gold.sft"], before["gold.sft_packed"])
    assert sft.rows == 5 and packed.examples == 5
    assert with_silver.pin(*GOLD) == before
    assert {name: len(with_silver.table(name).snapshots()) for name in GOLD} == history
