"""Build the gold SFT tables from silver: TRL conversational rows, then packed sequences.

``gold.sft`` holds each kept conversation as TRL's conversational ``messages`` (so
``SFTTrainer`` can tokenize it with any model's template); ``gold.sft_packed`` holds the
same conversations tokenized with the configured tokenizer and packed best-fit-decreasing
into fixed-length, padding-free sequences. Rows are written in a stable order, so the same
silver snapshot and config give byte-identical files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.execution import Executor
from posttrain.platform.gold.packing import PackConfig, PackStats, pack_sequences
from posttrain.platform.gold.tokenize import TokenizeConfig, tokenize_conversations
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse

SILVER = TableName.SILVER_CONVERSATIONS
SFT = TableName.GOLD_SFT
SFT_PACKED = TableName.GOLD_SFT_PACKED


class GoldSftConfig(FrozenConfig):
    """How ``gold.sft_packed`` is made from ``gold.sft``."""

    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    pack: PackConfig = Field(default_factory=PackConfig)


@dataclass(frozen=True)
class GoldSftReport:
    rows: int
    input_bytes: int
    seconds: float
    snapshot_id: int | None


@dataclass(frozen=True)
class PackedReport:
    """What tokenizing and packing did, for asset metadata."""

    examples: int
    refused: dict[str, int]  # reason → conversations the tokenizer could not use
    truncated: int
    stats: PackStats
    dropped_record_ids: list[str]  # refused by the tokenizer or left with no trainable token
    input_bytes: int
    seconds: float
    snapshot_id: int | None


def build_gold_sft(warehouse: Warehouse) -> GoldSftReport:
    """Overwrite ``gold.sft`` with the current silver conversations, sorted by ``record_id``."""
    started = time.monotonic()
    columns = tuple(GOLD_SFT.names)
    silver = warehouse.read(SILVER, columns=columns)
    rows = silver.take(pc.sort_indices(silver, [("record_id", "ascending")]))
    lineage = Lineage(TableName.GOLD_SFT, {SILVER: warehouse.snapshot_id(SILVER)})
    snapshot_id = warehouse.overwrite(SFT, rows, lineage)
    return GoldSftReport(rows.num_rows, rows.nbytes, time.monotonic() - started, snapshot_id)


def build_gold_packed(
    warehouse: Warehouse, config: GoldSftConfig, executor: Executor
) -> PackedReport:
    """Tokenize ``gold.sft`` with the chat template and pack it into ``gold.sft_packed``."""
    started = time.monotonic()
    source_snapshot = warehouse.snapshot_id(SFT)
    conversations = warehouse.read(
        SFT, columns=("record_id", "messages"), snapshot_id=source_snapshot
    )
    tokenized = tokenize_conversations(conversations, config.tokenize, executor)
    result = pack_sequences(tokenized.kept, config.pack)
    lineage = Lineage(TableName.GOLD_SFT_PACKED, {SFT: source_snapshot}, config.config_hash())
    snapshot_id = warehouse.overwrite(SFT_PACKED, result.packs, lineage)
    truncated = (
        int(pc.sum(tokenized.kept["truncated"]).as_py() or 0) if tokenized.kept.num_rows else 0
    )
    return PackedReport(
        examples=conversations.num_rows,
        refused=tokenized.rejected_by_reason,
        truncated=truncated,
        stats=result.stats,
        dropped_record_ids=sorted(
            [*result.dropped_record_ids, *tokenized.rejected["record_id"].to_pylist()]
        ),
        input_bytes=conversations.nbytes,
        seconds=time.monotonic() - started,
        snapshot_id=snapshot_id,
    )
