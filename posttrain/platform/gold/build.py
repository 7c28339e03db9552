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
from posttrain.platform.ingest.source_metadata import apply_source_metadata, source_metadata
from posttrain.platform.lineage import CONFIG_HASH_KEY, Lineage, inputs_from_summary
from posttrain.platform.rl.rollouts import sft_rows as rollout_sft_rows
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse

SILVER = TableName.SILVER_CONVERSATIONS
SFT = TableName.GOLD_SFT
SFT_PACKED = TableName.GOLD_SFT_PACKED
SOURCES = TableName.LINEAGE_SOURCES
ROLLOUTS = TableName.SILVER_ROLLOUTS
PACK_KEY_PROPERTY = "posttrain.pack-key"


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
    skipped: bool = False  # this pack key already packed that snapshot: nothing committed
    pack_key: str = ""  # the packing written (or kept): see pack_keys.py


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
    """Overwrite ``gold.sft`` with the silver conversations and the rollouts rejection
    sampling kept (``silver.rollouts``, with their checkpoint), sorted by ``record_id``.

    ``workspace`` and ``license`` come from ``lineage.sources`` (a source corrected with
    ``posttrain sources set`` is corrected in gold by the next build, with no re-ingest).
    Silver, the rollouts and the sources are read at the snapshots current when the build
    starts; when ``gold.sft`` was already built from those snapshots, nothing is committed.
    """
    started = time.monotonic()
    silver_snapshot, sources_snapshot, rollouts_snapshot, sft_snapshot = warehouse.pin(
        SILVER, SOURCES, ROLLOUTS, SFT
    ).values()
    inputs: dict[str, int | None] = {SILVER: silver_snapshot, SOURCES: sources_snapshot}
    if rollouts_snapshot is not None:  # a warehouse without rollouts records silver alone
        inputs[ROLLOUTS] = rollouts_snapshot
    current = _built_from(warehouse, SFT, inputs)
    if current is not None:
        rows = warehouse.info(SFT, current).rows
        return GoldSftReport(rows, 0, time.monotonic() - started, current, silver_snapshot, True)
    from_silver = tuple(name for name in GOLD_SFT.names if name != "checkpoint")
    silver = (
        warehouse.read(SILVER, columns=from_silver, snapshot_id=silver_snapshot)
        if silver_snapshot is not None
        else GOLD_SFT.empty_table().select(list(from_silver))
    )
    parts = [silver.append_column("checkpoint", pa.nulls(silver.num_rows, pa.string()))]
    if rollouts_snapshot is not None:
        parts.append(rollout_sft_rows(warehouse, rollouts_snapshot).select(GOLD_SFT.names))
    combined = pa.concat_tables([part.cast(GOLD_SFT) for part in parts])
    metadata = (
        source_metadata(warehouse, snapshot_id=sources_snapshot)
        if sources_snapshot is not None
        else {}
    )
    combined = apply_source_metadata(combined, metadata)
    rows = combined.take(pc.sort_indices(combined, [("record_id", "ascending")]))
    lineage = Lineage(TableName.GOLD_SFT, inputs)
    snapshot_id = warehouse.overwrite(SFT, rows, lineage, expected_snapshot=sft_snapshot)
    return GoldSftReport(
        rows.num_rows, rows.nbytes, time.monotonic() - started, snapshot_id, silver_snapshot
    )


def build_gold_packed(
    warehouse: Warehouse, config: GoldSftConfig, executor: Executor
) -> PackedReport:
    """Tokenize ``gold.sft`` with the chat template and pack it into ``gold.sft_packed``.

    Only the packing of ``config``'s :class:`~.pack_keys.PackKey` (tokenizer, template,
    mask policy, length) is replaced; packings with other keys stay. ``gold.sft`` is read
    at the snapshot current when the build starts; when this key already packed that
    snapshot, nothing is computed or committed and the report repeats the recorded figures.
    """
    started = time.monotonic()
    source_snapshot, packed_snapshot = warehouse.pin(SFT, SFT_PACKED).values()
    key = pack_key(config)
    previous = recorded(warehouse, key.value)
    if (
        previous is not None
        and previous.source_snapshot_id == source_snapshot
        and previous.packed_snapshot_id is not None
        and packed_snapshot is not None
    ):
        return PackedReport(
            examples=int(previous.stats.get("examples", 0)),
            refused={},
            truncated=0,
            stats=PackStats(**{k: int(v) for k, v in previous.stats.items() if k != "efficiency"}),
            dropped_record_ids=previous.dropped_record_ids,
            input_bytes=0,
            seconds=time.monotonic() - started,
            snapshot_id=packed_snapshot,
            sft_snapshot_id=source_snapshot,
            skipped=True,
            pack_key=key.value,
        )
    inputs: dict[str, int | None] = {SFT: source_snapshot}
    conversations = (
        warehouse.read(SFT, columns=("record_id", "messages"), snapshot_id=source_snapshot)
        if source_snapshot is not None
        else GOLD_SFT.empty_table().select(["record_id", "messages"])
    )
    tokenized = tokenize_conversations(conversations, config.tokenize, executor)
    result = pack_sequences(tokenized.kept, config.pack)
    packs = result.packs.add_column(
        0, "pack_key", pa.repeat(pa.scalar(key.value, pa.string()), result.packs.num_rows)
    )
    lineage = Lineage(
        TableName.GOLD_SFT_PACKED, inputs, config.config_hash(), {PACK_KEY_PROPERTY: key.value}
    )
    snapshot_id = warehouse.overwrite(
        SFT_PACKED, packs, lineage, expected_snapshot=packed_snapshot, where=key_filter(key.value)
    )
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
        sft_snapshot_id=source_snapshot,
        pack_key=key.value,
    )
