"""Gold tables go into TRL's SFTTrainer as they are: packed (padding-free) and conversational."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tiny_models import tiny_model

from posttrain.platform.gold.packing import PackConfig, pack_sequences
from posttrain.platform.gold.tokenize import TokenizeConfig, load_tokenizer, tokenize_conversations
from posttrain.platform.messages import Message
from posttrain.platform.schemas import GOLD_SFT

pytestmark = pytest.mark.slow


def _train(dataset: Any, tmp_path: Path, **sft_args: Any) -> Any:
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    tokenizer = load_tokenizer("posttrain-chat-8k")
    args = SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        **sft_args,
    )
    trainer = SFTTrainer(
        model=tiny_model(len(tokenizer)),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


def _losses(trainer: Any) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.fixture
def conversations(
    varied_conversations: dict[str, list[Message]],
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
) -> pa.Table:
    return make_conversations_table(list(varied_conversations.values()))


def _labels(input_ids: list[int], masks: list[int]) -> list[int]:
    return [token if bit else -100 for token, bit in zip(input_ids, masks, strict=True)]


def test_packed_gold_trains_padding_free_with_assistant_labels(
    conversations: pa.Table, tmp_path: Path
) -> None:
    from datasets import Dataset

    tokenized = tokenize_conversations(conversations, TokenizeConfig()).kept
    packs = pack_sequences(tokenized, PackConfig(seq_length=1024)).packs
    pq.write_table(packs, tmp_path / "sft_packed.parquet")
    dataset = Dataset.from_parquet(str(tmp_path / "sft_packed.parquet"))

    trainer = _train(dataset, tmp_path, padding_free=True, max_length=None)

    prepared = trainer.train_dataset
    assert prepared["labels"] == [
        _labels(ids, masks)
        for ids, masks in zip(
            packs["input_ids"].to_pylist(), packs["assistant_masks"].to_pylist(), strict=True
        )
    ]
    assert prepared["seq_lengths"] == packs["seq_lengths"].to_pylist()
    assert all(math.isfinite(loss) for loss in _losses(trainer))


def test_conversational_gold_trains_with_assistant_only_loss(
    conversations: pa.Table, tmp_path: Path
) -> None:
    from datasets import Dataset

    tokenized = tokenize_conversations(conversations, TokenizeConfig()).kept
    # gold.sft: the conversations tokenization kept (both keep input order), with num_tokens.
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
            "num_tokens": tokenized["num_tokens"],
        },
        schema=GOLD_SFT,
    )
    pq.write_table(gold_sft, tmp_path / "sft.parquet")
    dataset = Dataset.from_parquet(str(tmp_path / "sft.parquet"))

    trainer = _train(dataset, tmp_path, assistant_only_loss=True, max_length=None)

    ours = {row["record_id"]: row for row in tokenized.to_pylist()}
    expected = [
        _labels(ours[rid]["input_ids"], ours[rid]["assistant_masks"])
        for rid in gold_sft["record_id"].to_pylist()
    ]
    assert trainer.train_dataset["labels"] == expected
    assert all(math.isfinite(loss) for loss in _losses(trainer))


def test_trl_sees_the_shipped_template_train_the_end_of_turn_token() -> None:
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    tokenizer = load_tokenizer("posttrain-chat-8k")
    assert has_generation_markers(tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tokenizer)


def test_one_packing_read_from_the_warehouse_trains_padding_free(
    conversations: pa.Table, tmp_path: Path, warehouse: Any
) -> None:
    from datasets import Dataset

    from posttrain.platform.execution import InProcessExecutor
    from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed
    from posttrain.platform.gold.pack_keys import read_packing
    from posttrain.platform.lineage import Lineage
    from posttrain.platform.schemas import TableName

    nulls = pa.nulls(conversations.num_rows, pa.string())
    gold_sft = pa.table(
        {
            "record_id": conversations["record_id"],
            "messages": conversations["messages"],
            **{name: nulls for name in ("source", "workspace", "license", "checkpoint")},
        },
        schema=GOLD_SFT,
    )
    warehouse.overwrite(TableName.GOLD_SFT, gold_sft, Lineage("test"))
    config = GoldSftConfig(pack=PackConfig(seq_length=1024))
    report = build_gold_packed(warehouse, config, InProcessExecutor())
    packs = read_packing(warehouse, report.pack_key)

    trainer = _train(Dataset(packs), tmp_path, padding_free=True, max_length=None)

    assert trainer.train_dataset["labels"] == [
        _labels(ids, masks)
        for ids, masks in zip(
            packs["input_ids"].to_pylist(), packs["assistant_masks"].to_pylist(), strict=True
        )
    ]
    assert all(math.isfinite(loss) for loss in _losses(trainer))
