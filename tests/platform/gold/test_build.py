"""build_gold_packed: a conversation that makes tokenization raise is left out, not fatal."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pytest

from posttrain.platform import checks
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed
from posttrain.platform.gold.chat_render import Rendered
from posttrain.platform.gold.encoded import EncodedBatch
from posttrain.platform.gold.tokenize import ChatTokenizer
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import GOLD_SFT, TableName
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
            "checkpoint": nulls,
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
