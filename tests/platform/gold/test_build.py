"""Gold builds: pinned to the snapshot they read, idle when nothing is new, and a
conversation that makes tokenization raise is left out, not fatal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform import checks
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed, build_gold_sft
from posttrain.platform.gold.chat_render import Rendered
from posttrain.platform.gold.encoded import EncodedBatch
from posttrain.platform.gold.tokenize import ChatTokenizer
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import Lineage, inputs_from_summary
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse

POISON = "this text makes the tokenizer raise"


def _gold_sft(warehouse: Warehouse, answers: list[str]) -> None:
    ids = [f"r{i}" for i in range(len(answers))]
    messages = [
        [make_message("user", f"Question {i}?"), make_message("assistant", answer)]
        for i, answer in enumerate(answers)
    ]
    nulls = [None] * len(ids)
    rows = pa.table(
        {
            "record_id": ids,
            "messages": messages,
            "source": nulls,
            "workspace": nulls,
            "license": nulls,
        },
        schema=GOLD_SFT,
    )
    warehouse.overwrite(TableName.GOLD_SFT, rows, Lineage("test"))


def test_a_conversation_that_makes_tokenization_raise_is_dropped_and_named(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode = ChatTokenizer.encode

    def failing_encode(self: ChatTokenizer, rendered: Sequence[Rendered]) -> EncodedBatch:
        if any(POISON in text for text, _ in rendered):
            raise OverflowError("out of range integral type conversion attempted")
        return encode(self, rendered)

    monkeypatch.setattr(ChatTokenizer, "encode", failing_encode)
    _gold_sft(warehouse, ["Four.", POISON, "Paris."])

    report = build_gold_packed(warehouse, GoldSftConfig(), InProcessExecutor())

    assert report.refused == {"stage_error": 1}
    assert report.dropped_record_ids == ["r1"]
    assert report.stats.examples == 2
    assert checks.packs_cover_records(warehouse, report.dropped_record_ids).passed


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
