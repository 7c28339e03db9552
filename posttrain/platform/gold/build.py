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
from posttrain.platform.lineage import CONFIG_HASH_KEY, Lineage, inputs_from_summary
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
    """What building ``gold.sft`` did; ``snapshot_id`` is the one written (or kept)."""

    rows: int
    input_bytes: int
    seconds: float
    snapshot_id: int | None
    silver_snapshot_id: int | None = None  # the silver snapshot read
    skipped: bool = False  # gold.sft was already built from that snapshot: nothing committed


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
    sft_snapshot_id: int | None = None  # the gold.sft snapshot read
    skipped: bool = False  # already packed from that snapshot and config: nothing committed


def _built_from(
    warehouse: Warehouse, name: str, inputs: dict[str, int | None], config_hash: str = ""
) -> int | None:
    """``name``'s current snapshot id if it was built from exactly ``inputs`` and config."""
    snapshot_id = warehouse.snapshot_id(name)
    if snapshot_id is None:
        return None
    summary = warehouse.snapshot_summary(name, snapshot_id)
    if summary.get(CONFIG_HASH_KEY, "") != config_hash or inputs_from_summary(summary) != inputs:
        return None
    return snapshot_id


def build_gold_sft(warehouse: Warehouse) -> GoldSftReport:
    """Overwrite ``gold.sft`` with the silver conversations, sorted by ``record_id``.

    Silver is read at the snapshot current when the build starts; when ``gold.sft`` was
    already built from that snapshot, nothing is committed.
    """
    started = time.monotonic()
    silver_snapshot, sft_snapshot = warehouse.pin(SILVER, SFT).values()
    inputs: dict[str, int | None] = {SILVER: silver_snapshot}
    current = _built_from(warehouse, SFT, inputs)
    if current is not None:
        rows = warehouse.info(SFT, current).rows
        return GoldSftReport(rows, 0, time.monotonic() - started, current, silver_snapshot, True)
    columns = tuple(GOLD_SFT.names)
    silver = (
        warehouse.read(SILVER, columns=columns, snapshot_id=silver_snapshot)
        if silver_snapshot is not None
        else GOLD_SFT.empty_table()
    )
    rows = silver.take(pc.sort_indices(silver, [("record_id", "ascending")]))
    lineage = Lineage(TableName.GOLD_SFT, inputs)
    snapshot_id = warehouse.overwrite(SFT, rows, lineage, expected_snapshot=sft_snapshot)
    return GoldSftReport(
        rows.num_rows, rows.nbytes, time.monotonic() - started, snapshot_id, silver_snapshot
    )


def build_gold_packed(
    warehouse: Warehouse, config: GoldSftConfig, executor: Executor
) -> PackedReport:
    """Tokenize ``gold.sft`` with the chat template and pack it into ``gold.sft_packed``.

    ``gold.sft`` is read at the snapshot current when the build starts; when the packs were
    already built from that snapshot with the same config, nothing is committed (the packs
    are still computed, so the report's figures describe them).
    """
    started = time.monotonic()
    source_snapshot, packed_snapshot = warehouse.pin(SFT, SFT_PACKED).values()
    inputs: dict[str, int | None] = {SFT: source_snapshot}
    conversations = (
        warehouse.read(SFT, columns=("record_id", "messages"), snapshot_id=source_snapshot)
        if source_snapshot is not None
        else GOLD_SFT.empty_table().select(["record_id", "messages"])
    )
    tokenized = tokenize_conversations(conversations, config.tokenize, executor)
    result = pack_sequences(tokenized.kept, config.pack)
    lineage = Lineage(TableName.GOLD_SFT_PACKED, inputs, config.config_hash())
    unchanged = _built_from(warehouse, SFT_PACKED, inputs, config.config_hash())
    snapshot_id = (
        unchanged
        if unchanged is not None
        else warehouse.overwrite(
            SFT_PACKED, result.packs, lineage, expected_snapshot=packed_snapshot
        )
    )
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
        sft_snapshot_id=source_snapshot,
        skipped=unchanged is not None,
    )
