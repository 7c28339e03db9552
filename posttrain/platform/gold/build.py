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

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.execution import Executor
from posttrain.platform.gold.pack_keys import (
    PackingRecord,
    key_filter,
    pack_key,
    record,
    recorded,
)
from posttrain.platform.gold.packing import PackConfig, PackStats, pack_sequences
from posttrain.platform.gold.tokenize import TokenizeConfig, tokenize_conversations
from posttrain.platform.lineage import Lineage
from posttrain.platform.rl.rollouts import sft_rows as rollout_sft_rows
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse

SILVER = TableName.SILVER_CONVERSATIONS
ROLLOUTS = TableName.SILVER_ROLLOUTS
SFT = TableName.GOLD_SFT
SFT_PACKED = TableName.GOLD_SFT_PACKED
PACK_KEY_PROPERTY = "posttrain.pack-key"


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
    pack_key: str = ""
    reused: bool = False  # this key had already packed this gold.sft snapshot: nothing written


def build_gold_sft(warehouse: Warehouse) -> GoldSftReport:
    """Overwrite ``gold.sft`` with the current silver conversations and the rollouts that
    rejection sampling kept (``silver.rollouts``, with their checkpoint), by ``record_id``."""
    started = time.monotonic()
    silver_snapshot = warehouse.snapshot_id(SILVER)
    rollouts_snapshot = warehouse.snapshot_id(ROLLOUTS)
    silver = warehouse.read(
        SILVER, columns=tuple(n for n in GOLD_SFT.names if n != "checkpoint"),
        snapshot_id=silver_snapshot,
    )  # fmt: skip
    silver = silver.append_column("checkpoint", pa.nulls(silver.num_rows, pa.string()))
    parts = [silver.cast(GOLD_SFT)]
    if rollouts_snapshot is not None:
        parts.append(
            rollout_sft_rows(warehouse, rollouts_snapshot).select(GOLD_SFT.names).cast(GOLD_SFT)
        )
    combined = pa.concat_tables(parts)
    rows = combined.take(pc.sort_indices(combined, [("record_id", "ascending")]))
    inputs: dict[str, int | None] = {SILVER: silver_snapshot}
    if rollouts_snapshot is not None:
        inputs[ROLLOUTS] = rollouts_snapshot
    lineage = Lineage(TableName.GOLD_SFT, inputs)
    snapshot_id = warehouse.overwrite(SFT, rows, lineage)
    return GoldSftReport(rows.num_rows, rows.nbytes, time.monotonic() - started, snapshot_id)


def build_gold_packed(
    warehouse: Warehouse, config: GoldSftConfig, executor: Executor
) -> PackedReport:
    """Tokenize ``gold.sft`` with the chat template and pack it into ``gold.sft_packed``.

    Only the packing of ``config``'s :class:`~.pack_keys.PackKey` is replaced; packings
    with other keys (other tokenizers, templates, lengths) stay. When that key already
    packed the current ``gold.sft`` snapshot, nothing is written and the report says so.
    """
    started = time.monotonic()
    source_snapshot = warehouse.snapshot_id(SFT)
    key = pack_key(config)
    previous = recorded(warehouse, key.value)
    if (
        previous is not None
        and previous.source_snapshot_id == source_snapshot
        and previous.packed_snapshot_id is not None
    ):
        return PackedReport(
            examples=int(previous.stats.get("examples", 0)),
            refused={},
            truncated=0,
            stats=PackStats(**{k: int(v) for k, v in previous.stats.items() if k != "efficiency"}),
            dropped_record_ids=previous.dropped_record_ids,
            input_bytes=0,
            seconds=time.monotonic() - started,
            snapshot_id=warehouse.snapshot_id(SFT_PACKED),
            pack_key=key.value,
            reused=True,
        )
    conversations = warehouse.read(
        SFT, columns=("record_id", "messages"), snapshot_id=source_snapshot
    )
    tokenized = tokenize_conversations(conversations, config.tokenize, executor)
    result = pack_sequences(tokenized.kept, config.pack)
    packs = result.packs.add_column(
        0, "pack_key", pa.repeat(pa.scalar(key.value, pa.string()), result.packs.num_rows)
    )
    lineage = Lineage(
        TableName.GOLD_SFT_PACKED,
        {SFT: source_snapshot},
        config.config_hash(),
        {PACK_KEY_PROPERTY: key.value},
    )
    snapshot_id = warehouse.overwrite(SFT_PACKED, packs, lineage, where=key_filter(key.value))
    truncated = (
        int(pc.sum(tokenized.kept["truncated"]).as_py() or 0) if tokenized.kept.num_rows else 0
    )
    dropped = sorted([*result.dropped_record_ids, *tokenized.rejected["record_id"].to_pylist()])
    record(
        warehouse,
        PackingRecord(
            key=key,
            source_snapshot_id=source_snapshot,
            packed_snapshot_id=snapshot_id,
            packs=packs.num_rows,
            stats=result.stats.as_metadata(),
            dropped_record_ids=dropped,
        ),
        lineage,
    )
    return PackedReport(
        examples=conversations.num_rows,
        refused=tokenized.rejected_by_reason,
        truncated=truncated,
        stats=result.stats,
        dropped_record_ids=dropped,
        input_bytes=conversations.nbytes,
        seconds=time.monotonic() - started,
        snapshot_id=snapshot_id,
        pack_key=key.value,
    )
