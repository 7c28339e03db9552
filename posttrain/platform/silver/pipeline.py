"""Build the silver layer: bronze records → clean conversations + rejections.

Per batch (in-process or on Ray, through one :class:`Executor`): parse the payload into
canonical messages, apply the quality filters, redact secrets and personal data, and
check for benchmark contamination. Then, over everything that survived, exact and
near-duplicate detection against itself and against what silver already published.

Every bronze record ends in exactly one of ``silver.conversations`` and
``silver.rejections`` — the conservation rule the asset checks enforce.

Runs are incremental: only bronze records that silver has not yet accounted for are
processed, and they are deduplicated against the published rows. When the silver config
or an eval table changed since the last build (or ``full_refresh`` is asked), silver is
rebuilt from all of bronze, because its published rows were judged by other rules.

Example:
    >>> report = build_silver(warehouse, SilverConfig(), InProcessExecutor())  # doctest: +SKIP
    >>> report.rejected_by_reason  # doctest: +SKIP
    {'exact_dup': 212, 'near_dup': 141, 'contaminated': 40, 'malformed': 25, ...}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    NgramIndex,
    index_from_warehouse,
    summarize_contamination,
)
from posttrain.platform.decontam.summary import ContaminationSummary
from posttrain.platform.dedup import DedupConfig, DedupStats, PublishedIndex, deduplicate
from posttrain.platform.execution import DEFAULT_BATCH_ROWS, Executor, rebatch
from posttrain.platform.ingest.formats import PREFERENCE_FORMATS, ChatFormat
from posttrain.platform.lineage import CONFIG_HASH_KEY, INPUT_PREFIX, Lineage
from posttrain.platform.schemas import SILVER_CONVERSATIONS, SILVER_REJECTIONS, TableName
from posttrain.platform.silver.parse import ParseStep
from posttrain.platform.silver.quality import QualityConfig, QualityStep
from posttrain.platform.silver.redact import RedactionConfig, RedactStep
from posttrain.platform.steps import Chain, counts_by, run_stages
from posttrain.platform.warehouse import Snapshots, Warehouse

BRONZE = TableName.BRONZE_RECORDS
CONVERSATIONS = TableName.SILVER_CONVERSATIONS
REJECTIONS = TableName.SILVER_REJECTIONS


_Rows = TypeVar("_Rows", pa.RecordBatch, pa.Table)


class SilverConfig(FrozenConfig):
    """Every rule that decides what silver keeps; its hash is stamped on silver snapshots."""

    quality: QualityConfig = Field(default_factory=QualityConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)


@dataclass(frozen=True)
class SilverReport:
    """What one build did, for asset metadata and the CLI."""

    mode: str  # "full" or "incremental"
    rows_in: int
    kept: int
    rejected_by_reason: dict[str, int]
    contamination: ContaminationSummary
    redactions_by_kind: dict[str, int]
    dedup: DedupStats
    input_bytes: int
    seconds: float
    # Snapshot ids the build read (bronze, eval.*, and the silver tables it started from)
    # and wrote (equal to those it started from when it had nothing to commit): the
    # checks, metadata and lineage of this build refer to these, never to "current".
    read: dict[str, int | None] = field(default_factory=dict)
    written: dict[str, int | None] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def record_stages(config: SilverConfig, index: NgramIndex) -> Chain:
    """Parse → quality → redact → decontaminate, in that order.

    Redaction precedes dedup so that two copies differing only in a leaked e-mail address
    are exact duplicates; decontamination precedes dedup so a duplicate never points to a
    kept record that is later refused as contaminated.
    """
    return Chain(
        (
            ParseStep(),
            QualityStep(config.quality),
            RedactStep(config.redaction),
            DecontamStep(index, config.decontam),
        )
    )


def needs_full_rebuild(
    warehouse: Warehouse,
    config: SilverConfig,
    eval_snapshots: dict[str, int | None],
    silver_snapshot: int | None,
) -> str | None:
    """Why silver must be rebuilt from all of bronze, or ``None`` if an increment will do.

    ``silver_snapshot`` is the ``silver.conversations`` snapshot the build started from.
    """
    summary = (
        warehouse.snapshot_summary(CONVERSATIONS, silver_snapshot)
        if silver_snapshot is not None
        else {}
    )
    if not summary:
        return "silver does not exist yet"
    if summary.get(CONFIG_HASH_KEY) != config.config_hash():
        return "the silver config changed since the last build"
    for table, snapshot_id in eval_snapshots.items():
        if summary.get(INPUT_PREFIX + table) != str(snapshot_id):
            return f"{table} changed since the last build"
    return None


def _accounted_ids(warehouse: Warehouse, at: Snapshots) -> pa.Array:
    return pa.concat_arrays(
        [warehouse.column(name, "record_id", at=at) for name in (CONVERSATIONS, REJECTIONS)]
    )


# Bronze records another corpus accounts for: preference records are silver.preferences',
# rollouts silver.rollouts' (scored, then rejection-sampled).
_OTHER_CORPORA = pa.array(sorted({*PREFERENCE_FORMATS, ChatFormat.ROLLOUT}), pa.string())


def silver_accounts_for(formats: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a bronze row with this ``format`` is silver's to keep or reject: neither a
    preference record nor a rollout. A null or unknown format stays, so silver names it
    malformed."""
    return pc.invert(pc.fill_null(pc.is_in(formats, value_set=_OTHER_CORPORA), False))


def chat_rows(batch: _Rows) -> _Rows:
    """The rows of a bronze batch that silver accounts for (see :func:`silver_accounts_for`)."""
    if "format" not in batch.schema.names:
        return batch
    return batch.filter(silver_accounts_for(batch["format"]))


def _pending_batches(
    warehouse: Warehouse, done: pa.Array, counter: list[int], bronze_snapshot: int | None
) -> Iterator[pa.RecordBatch]:
    if bronze_snapshot is None:
        return
    for batch in warehouse.read_batches(BRONZE, snapshot_id=bronze_snapshot):
        batch = chat_rows(batch)
        if len(done):
            batch = batch.filter(pc.invert(pc.is_in(batch["record_id"], value_set=done)))
        counter[0] += batch.num_rows
        for column in ("payload", "payload_bytes"):
            if column in batch.schema.names:
                counter[1] += pc.sum(pc.binary_length(batch[column])).as_py() or 0
        yield batch


def _conversation_columns(kept: pa.Table) -> pa.Table:
    """Add the quality signals silver stores: turns and characters of message content."""
    messages = kept["messages"].combine_chunks()
    num_turns = pc.fill_null(pc.list_value_length(messages), 0).cast(pa.int32())
    content_chars = pc.fill_null(pc.utf8_length(pc.list_flatten(messages).field("content")), 0)
    chars = np.bincount(
        pc.list_parent_indices(messages).to_numpy(),
        weights=content_chars.to_numpy(),
        minlength=kept.num_rows,
    ).astype(np.int64)
    return kept.append_column("num_turns", num_turns).append_column("num_chars", pa.array(chars))


def _sorted(table: pa.Table) -> pa.Table:
    return table.take(pc.sort_indices(table, [("record_id", "ascending")]))


def _redaction_totals(kept: pa.Table) -> dict[str, int]:
    if kept.num_rows == 0 or "redactions" not in kept.column_names:
        return {}
    counts = kept["redactions"].combine_chunks()
    if len(counts.keys) == 0:
        return {}
    totals = (
        pa.table({"kind": counts.keys, "n": counts.items})
        .group_by("kind")
        .aggregate([("n", "sum")])
    )
    return dict(sorted(zip(totals["kind"].to_pylist(), totals["n_sum"].to_pylist(), strict=True)))


def build_silver(
    warehouse: Warehouse,
    config: SilverConfig,
    executor: Executor,
    *,
    full_refresh: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    log: Callable[[str], None] = lambda message: None,
) -> SilverReport:
    """Process the bronze records silver has not seen and write both silver tables.

    Args:
        warehouse: holds ``bronze.records`` and the ``eval.*`` tables; silver is written here.
        config: the rules (validated before anything is read or written).
        executor: runs the per-batch steps and the MinHash signatures.
        full_refresh: rebuild from all of bronze even if an increment would do.
        batch_rows: rows per executor batch (no effect on the output).
        log: receives one-line progress messages (why a full rebuild, counts).
    """
    started = time.monotonic()
    # Pinned before anything is read: a writer committing meanwhile changes nothing here.
    pinned = warehouse.pin(BRONZE, CONVERSATIONS, REJECTIONS)
    index = index_from_warehouse(warehouse, config.decontam)
    eval_snapshots = {f"eval.{name}": snapshot for name, snapshot in index.snapshot_ids.items()}
    reason = (
        "asked for"
        if full_refresh
        else needs_full_rebuild(warehouse, config, eval_snapshots, pinned[CONVERSATIONS])
    )
    mode = "full" if reason else "incremental"
    log(f"silver: {mode} build" + (f" ({reason})" if reason else ""))
    done = pa.array([], pa.string()) if reason else _accounted_ids(warehouse, pinned)

    counter = [0, 0]
    checked = run_stages(
        record_stages(config, index),
        rebatch(_pending_batches(warehouse, done, counter, pinned[BRONZE]), batch_rows),
        executor,
        label="silver: parse, filter, redact, decontaminate",
    )
    kept = checked.kept if checked.kept.num_rows else _empty_candidates()

    published = (
        PublishedIndex.from_table(
            _published(warehouse, pinned[CONVERSATIONS]),
            config.dedup,
        )
        if mode == "incremental"
        else None
    )
    dedup = deduplicate(kept, config.dedup, executor, published, batch_rows=batch_rows)
    conversations = _sorted(_conversation_columns(dedup.kept(kept))).select(
        SILVER_CONVERSATIONS.names
    )
    rejections = _sorted(
        pa.concat_tables([checked.rejected, dedup.rejected]).cast(SILVER_REJECTIONS)
    )

    lineage = Lineage(
        "silver",
        {BRONZE: pinned[BRONZE], **eval_snapshots},
        config.config_hash(),
        config.decontam.summary_properties(),
    )
    log(
        f"silver: {counter[0]:,} records read from bronze snapshot {pinned[BRONZE]}; "
        f"writing {conversations.num_rows:,} kept, {rejections.num_rows:,} rejected"
    )
    # Each write is a compare-and-swap on the snapshot this build read: a concurrent silver
    # build makes this one fail (rejections first, before anything is written), never
    # append the same records twice. An incremental build with nothing new commits nothing.
    write = warehouse.overwrite if mode == "full" else warehouse.append
    written: dict[str, int | None] = {
        name: write(name, rows, lineage, expected_snapshot=pinned[name])
        for name, rows in ((REJECTIONS, rejections), (CONVERSATIONS, conversations))
    }
    return SilverReport(
        mode=mode,
        rows_in=counter[0],
        kept=conversations.num_rows,
        rejected_by_reason=counts_by(rejections, "reason"),
        contamination=summarize_contamination(
            rejections.filter(pc.equal(rejections["reason"], "contaminated")), counter[0]
        ),
        redactions_by_kind=_redaction_totals(conversations),
        dedup=dedup.stats,
        input_bytes=counter[1],
        seconds=time.monotonic() - started,
        read={**pinned, **eval_snapshots},
        written=written,
    )


def _published(warehouse: Warehouse, snapshot_id: int | None) -> pa.Table:
    columns = ("record_id", "exact_hash", "minhash")
    if snapshot_id is None:
        return SILVER_CONVERSATIONS.empty_table().select(columns)
    return warehouse.read(CONVERSATIONS, columns=columns, snapshot_id=snapshot_id)


def _empty_candidates() -> pa.Table:
    names = [
        name
        for name in SILVER_CONVERSATIONS.names
        if name not in ("num_turns", "num_chars", "exact_hash", "minhash")
    ]
    return SILVER_CONVERSATIONS.empty_table().select(names)
