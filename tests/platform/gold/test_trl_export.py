"""The files `posttrain export` writes go into TRL's SFTTrainer as they are, loaded with
`datasets.load_dataset`, and TRL trains on exactly the assistant tokens."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_trl_integration import _labels, _losses, _train

from posttrain.platform.export import export_table
from posttrain.platform.gold.tokenize import TokenizeConfig, tokenize_conversations
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import Message
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("fmt", "builder"), [("jsonl", "json"), ("parquet", "parquet")])
def test_exported_gold_sft_trains_in_sft_trainer_on_assistant_tokens(
    varied_conversations: dict[str, list[Message]],
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
    tmp_path: Path,
    fmt: str,
    builder: str,
) -> None:
    from datasets import load_dataset

    conversations = make_conversations_table(list(varied_conversations.values()))
    tokenized = tokenize_conversations(conversations, TokenizeConfig()).kept
    kept = conversations.filter(pc.is_in(conversations["record_id"], tokenized["record_id"]))
    nulls = pa.nulls(kept.num_rows, pa.string())
    gold_sft = pa.table(
        {
            "record_id": kept["record_id"],
            "messages": kept["messages"],
            "source": nulls,
            "workspace": nulls,
            "license": nulls,
            "checkpoint": nulls,
        },
        schema=GOLD_SFT,
    )
    warehouse = Warehouse(WarehouseSettings.local(tmp_path / "home"))
    warehouse.append(TableName.GOLD_SFT, gold_sft, Lineage("gold"))
    export_table(warehouse, TableName.GOLD_SFT, tmp_path / "export", fmt)

    dataset = load_dataset(
        builder, data_dir=str(tmp_path / "export"), split="train", cache_dir=str(tmp_path / "hf")
    )
    trainer = _train(dataset, tmp_path, assistant_only_loss=True, max_length=None)

    ours = {row["record_id"]: row for row in tokenized.to_pylist()}
    expected = [
        _labels(ours[rid]["input_ids"], ours[rid]["assistant_masks"])
        for rid in dataset["record_id"]
    ]
    assert trainer.train_dataset["labels"] == expected
    assert all(math.isfinite(loss) for loss in _losses(trainer))
