"""Build ``silver.preferences`` (and its rejections) from bronze, and ``gold.dpo`` from it.

Three stages under the one stage contract (:func:`~posttrain.platform.steps.run_stages`,
guarded, so a record that makes a stage raise is a ``stage_error`` rejection):

1. :class:`ExpandStep`: a bronze record in a preference format → its candidate pairs, or
   a *record-level* rejection (``pair_id`` null): malformed, missing field, no pairs,
   unknown judged record.
2. :class:`RedactPairsStep`: secrets in the prompt and both answers replaced by
   silver's placeholders (the same detectors as ``silver.conversations``), counted.
3. :class:`PairCheckStep`: each candidate pair → kept, or a *pair-level* rejection
   (``pair_id`` set): ``same_sides``, ``no_shared_prompt``, ``empty``, a side failing
   SFT's quality filters (``too_short``, ``too_long``, ``invalid_roles``, ...),
   ``contaminated`` (prompt or either answer shares n-grams with a benchmark).

Then, over everything kept, exact dedup of pairs (``duplicate_pair``; the pair with the
smallest ``pair_id`` is kept).

Accounting — the two invariants :func:`preferences_conserved` checks:

- every bronze record in a preference format is *either* a record-level rejection *or*
  the ``record_id`` of at least one candidate pair, never both;
- every candidate pair is in exactly one of ``silver.preferences`` and the pair-level
  rejections. So a rated record whose three pairs lost one to dedup is kept (two pairs)
  and that one pair is a rejection naming the pair.

Builds are full: they replace the rows this build owns (origins ``format`` and
``judgment``) and leave pairs written by other builders (``rollouts``) alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field
from pyiceberg.expressions import BooleanExpression, In, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.config import FrozenConfig
from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    NgramIndex,
    index_from_warehouse,
)
from posttrain.platform.errors import RecordError
from posttrain.platform.execution import DEFAULT_BATCH_ROWS, Executor
from posttrain.platform.ingest.formats import PREFERENCE_FORMATS, ChatFormat
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import Message
from posttrain.platform.preference.pairs import PairingConfig, candidate_pairs
from posttrain.platform.schemas import (
    GOLD_DPO,
    MESSAGES_TYPE,
    SILVER_PREFERENCES,
    SILVER_REJECTIONS,
    TABLES,
    RejectionReason,
    TableName,
)
from posttrain.platform.silver.parse import parse_payload, undecodable_payload
from posttrain.platform.silver.quality import QualityConfig, default_filters, judge_conversation
from posttrain.platform.silver.redact import RedactionConfig, Redactor
from posttrain.platform.steps import (
    StepResult,
    as_table,
    counts_by,
    empty_rejections,
    rejection_rows,
    rejections_of,
    run_stages,
)
from posttrain.platform.warehouse import Warehouse

BRONZE = TableName.BRONZE_RECORDS
OUTCOMES = TableName.BRONZE_OUTCOMES
PREFERENCES = TableName.SILVER_PREFERENCES
PREFERENCE_REJECTIONS = TableName.SILVER_PREFERENCE_REJECTIONS
DPO = TableName.GOLD_DPO
OWN_ORIGINS = ("format", "judgment")  # the origins this build writes and replaces

_PROVENANCE = ("source", "source_uri", "workspace", "license", "batch_id", "format")
# The candidate pairs between the two stages: silver.preferences' columns.
CANDIDATES = SILVER_PREFERENCES


def is_in(column: str, values: Sequence[str]) -> BooleanExpression:
    """The Iceberg row filter ``column IN values``."""
    return In(term=Reference(column), values={literal(value) for value in values})


class PreferenceConfig(FrozenConfig):
    """Every rule that decides what silver.preferences keeps; hashed into its lineage."""

    pairing: PairingConfig = Field(default_factory=PairingConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)


@dataclass(frozen=True)
class ExpandStep:
    """Bronze rows in a preference format → candidate pairs (``CANDIDATES`` schema)."""

    pairing: PairingConfig
    conversations: Mapping[str, list[Message]] = field(default_factory=dict)
    name: ClassVar[str] = "expand pairs"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        rows: list[dict[str, Any]] = []
        refused: list[tuple[Mapping[str, Any], RecordError]] = []
        for row in table.to_pylist():
            try:
                if row.get("payload") is None:
                    raise undecodable_payload(row.get("payload_bytes"))
                fmt = ChatFormat(row["format"])
                candidates = candidate_pairs(
                    row["payload"], fmt, row["record_id"], self.pairing, self.conversations
                )
            except RecordError as error:
                refused.append((row, error))
                continue
            origin = "judgment" if fmt is ChatFormat.JUDGMENT else "format"
            for candidate in candidates:
                rows.append(
                    {
                        "pair_id": candidate.pair_id,
                        "record_id": row["record_id"],
                        "prompt": candidate.prompt,
                        "chosen": candidate.chosen,
                        "rejected": candidate.rejected,
                        "margin": candidate.margin,
                        "pairing_rule": candidate.pairing_rule,
                        "chosen_record_id": candidate.chosen_record_id,
                        "rejected_record_id": candidate.rejected_record_id,
                        **{name: row.get(name) for name in _PROVENANCE},
                        "row_index": row.get("row_index"),
                        "origin": origin,
                    }
                )
        kept = pa.Table.from_pylist(rows, schema=CANDIDATES)
        return StepResult(
            kept=kept,
            rejected=rejection_rows(refused),
            counters={"records_expanded": table.num_rows - len(refused), "pairs": len(rows)},
        )


class RedactPairsStep:
    """Candidate pairs with secrets redacted in ``prompt``, ``chosen`` and ``rejected``.

    Every pair is kept; counters ``redactions.<kind>`` sum over the three sides. Runs
    before the pair checks, so two answers that differ only by a secret become
    ``same_sides``.
    """

    name = "redact pairs"
    sides = ("prompt", "chosen", "rejected")

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.redactor = Redactor(config)

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        totals: Counter[str] = Counter()
        for side in self.sides:
            column, counts = self.redactor.redact_column(table.column(side))
            table = table.set_column(
                table.schema.get_field_index(side), table.schema.field(side), column
            )
            for row in counts:
                totals.update(row)
        counters = {f"redactions.{kind}": count for kind, count in sorted(totals.items())}
        return StepResult(kept=table, rejected=empty_rejections(), counters=counters)


def _blank(messages: Sequence[Message]) -> bool:
    return all(
        not (message.get("content") or "").strip() and not message.get("tool_calls")
        for message in messages
    )


def _pair_error(row: Mapping[str, Any], quality: QualityConfig) -> RecordError | None:
    prompt, chosen, rejected = row["prompt"] or [], row["chosen"] or [], row["rejected"] or []
    if not prompt:
        return RecordError(
            RejectionReason.NO_SHARED_PROMPT,
            "chosen and rejected share no leading message, so there is no prompt",
        )
    if _blank(prompt):
        return RecordError(RejectionReason.EMPTY, "the prompt has no text")
    for side, messages in (("chosen", chosen), ("rejected", rejected)):
        if _blank(messages):
            return RecordError(RejectionReason.EMPTY, f"the {side} side has no text")
    if chosen == rejected:
        return RecordError(RejectionReason.SAME_SIDES, "chosen and rejected are identical")
    filters = default_filters(quality)
    for side, messages in (("chosen", chosen), ("rejected", rejected)):
        error = judge_conversation([*prompt, *messages], filters)
        if error is not None:
            return RecordError(error.reason, f"{side} side: {error.detail}")
    return None


@dataclass(frozen=True)
class PairCheckStep:
    """Candidate pairs → kept, or pair-level rejections (see the module docstring)."""

    quality: QualityConfig
    decontam: DecontamStep
    name: ClassVar[str] = "check pairs"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        refused: list[tuple[int, RecordError]] = []
        for position, row in enumerate(table.select(["prompt", "chosen", "rejected"]).to_pylist()):
            error = _pair_error(row, self.quality)
            if error is not None:
                refused.append((position, error))
        bad = {position for position, _ in refused}
        survivors = np.array([i for i in range(table.num_rows) if i not in bad], dtype=np.int64)
        rejected = [rejections_of(table, refused)]
        if len(survivors):
            columns = (
                table.column(name).take(survivors).to_pylist()
                for name in ("prompt", "chosen", "rejected")
            )
            whole = [[*p, *c, *r] for p, c, r in zip(*columns, strict=True)]
            probe = pa.table(
                {
                    "record_id": table["pair_id"].take(survivors),
                    "messages": pa.array(whole, MESSAGES_TYPE),
                }
            )
            found = self.decontam.evidence(probe)
            if len(found.rows):
                contaminated = [int(survivors[row]) for row in found.rows]
                rejected.append(
                    rejections_of(
                        table,
                        [
                            (position, RecordError(RejectionReason.CONTAMINATED, detail))
                            for position, detail in zip(contaminated, found.detail, strict=True)
                        ],
                        benchmark=found.benchmark,
                        benchmark_item_id=found.item_id,
                        matched_ngrams=found.matched_ngrams,
                    )
                )
                bad.update(contaminated)
        keep = pa.array([i not in bad for i in range(table.num_rows)], pa.bool_())
        return StepResult(kept=table.filter(keep), rejected=pa.concat_tables(rejected))


def _pair_hash(row: Mapping[str, Any]) -> str:
    def text(messages: Sequence[Message] | None) -> list[tuple[str, str]]:
        return [(m["role"], " ".join((m.get("content") or "").split())) for m in messages or []]

    blob = json.dumps([text(row["prompt"]), text(row["chosen"]), text(row["rejected"])])
    return hashlib.sha256(blob.encode()).hexdigest()


def dedup_pairs(kept: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``(kept, rejections)``: exact duplicate pairs (same prompt, chosen and rejected up to
    whitespace) beyond the one with the smallest ``pair_id``."""
    kept = kept.take(pc.sort_indices(kept, [("pair_id", "ascending")]))
    rows = kept.select(["prompt", "chosen", "rejected", "pair_id", "record_id"]).to_pylist()
    first: dict[str, Mapping[str, Any]] = {}
    refused: list[tuple[int, RecordError]] = []
    keepers: list[str | None] = []
    for position, row in enumerate(rows):
        digest = _pair_hash(row)
        keeper = first.setdefault(digest, row)
        if keeper is not row:
            refused.append(
                (
                    position,
                    RecordError(
                        RejectionReason.DUPLICATE_PAIR,
                        f"same prompt, chosen and rejected as pair {keeper['pair_id']}",
                    ),
                )
            )
            keepers.append(keeper["record_id"])
    mask = np.ones(kept.num_rows, dtype=bool)
    mask[[position for position, _ in refused]] = False
    return kept.filter(pa.array(mask)), rejections_of(kept, refused, kept_record_id=keepers)


def outcome_judgments(
    warehouse: Warehouse, snapshot_id: int | None, schema: pa.Schema | None = None
) -> pa.Table:
    """Pairwise preferences of ``bronze.outcomes`` (kind ``preference`` naming
    ``other_record_id``) at ``snapshot_id``, as bronze rows in the ``judgment`` format:
    ``record_id`` is the outcome id, the payload names ``record_id`` as chosen and
    ``other_record_id`` as rejected, ``value`` is the margin. They then pass the same
    stages, checks and accounting as a judgment record."""
    schema = schema or TABLES[BRONZE].schema
    if snapshot_id is None:
        return schema.empty_table()
    outcomes = warehouse.read(OUTCOMES, row_filter="kind == 'preference'", snapshot_id=snapshot_id)
    if "other_record_id" not in outcomes.column_names:  # written before the column existed
        return schema.empty_table()
    outcomes = outcomes.filter(pc.is_valid(outcomes["other_record_id"]))
    rows = [
        {
            "record_id": row["outcome_id"],
            "payload": json.dumps(
                {
                    "chosen_record_id": row["record_id"],
                    "rejected_record_id": row["other_record_id"],
                    "margin": row["value"],
                }
            ),
            "row_index": row["row_index"] or 0,
            "source": row["source"] or OUTCOMES,
            "source_uri": row["source_uri"],
            "batch_id": row["batch_id"],
            "format": ChatFormat.JUDGMENT.value,
            "ingested_at": row["arrived_at"],
        }
        for row in outcomes.to_pylist()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _judged_conversations(
    warehouse: Warehouse, snapshot_id: int, judgments: pa.Table
) -> dict[str, list[Message]]:
    """Parsed chat records that ``judgments`` (bronze rows) name, by record id (unparseable
    ones left out)."""
    wanted: set[str] = set()
    for payload in judgments["payload"].to_pylist():
        try:
            record = json.loads(payload or "")
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            wanted.update(
                value
                for key in ("chosen_record_id", "rejected_record_id")
                if isinstance(value := record.get(key), str)
            )
    if not wanted:
        return {}
    found = warehouse.read(
        BRONZE,
        columns=("record_id", "payload", "format"),
        row_filter=is_in("record_id", sorted(wanted)),
        snapshot_id=snapshot_id,
    )
    conversations: dict[str, list[Message]] = {}
    for row in found.to_pylist():
        try:
            conversations[row["record_id"]] = parse_payload(
                row["payload"], ChatFormat(row["format"])
            )
        except (RecordError, ValueError, TypeError):
            continue
    return conversations


def preference_rows(
    warehouse: Warehouse, snapshot_id: int | None, columns: tuple[str, ...] | None = None
) -> pa.Table:
    """The bronze records in a preference format, at bronze snapshot ``snapshot_id``."""
    if snapshot_id is None:
        schema = TABLES[BRONZE].schema
        return schema.empty_table().select(list(columns or schema.names))
    return warehouse.read(
        BRONZE,
        columns=columns,
        row_filter=is_in("format", sorted(PREFERENCE_FORMATS)),
        snapshot_id=snapshot_id,
    )


@dataclass(frozen=True)
class PreferenceReport:
    """What one build did, for asset metadata and the CLI."""

    records_in: int
    records_rejected: int
    candidates: int
    kept: int
    rejected_by_reason: dict[str, int]
    margins: list[float]
    seconds: float
    bronze_snapshot_id: int | None  # the bronze snapshot read
    outcomes_snapshot_id: int | None  # the bronze.outcomes snapshot read
    snapshot_id: int | None  # silver.preferences as written
    rejections_snapshot_id: int | None  # silver.preference_rejections as written
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def snapshots(self) -> dict[str, int | None]:
        """The snapshots the build read and wrote, for checks pinned to them."""
        return {
            BRONZE: self.bronze_snapshot_id,
            OUTCOMES: self.outcomes_snapshot_id,
            PREFERENCES: self.snapshot_id,
            PREFERENCE_REJECTIONS: self.rejections_snapshot_id,
        }


def build_preferences(
    warehouse: Warehouse,
    config: PreferenceConfig,
    executor: Executor,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    log: Callable[[str], None] = lambda message: None,
) -> PreferenceReport:
    """Rebuild ``silver.preferences`` (origins format, judgment) and its rejections."""
    started = time.monotonic()
    index: NgramIndex = index_from_warehouse(warehouse, config.decontam)
    eval_snapshots = {f"eval.{name}": snap for name, snap in index.snapshot_ids.items()}
    bronze_snapshot, outcomes_snapshot, refused_snapshot = warehouse.pin(
        BRONZE, OUTCOMES, PREFERENCE_REJECTIONS
    ).values()
    bronze = preference_rows(warehouse, bronze_snapshot)
    from_outcomes = outcome_judgments(warehouse, outcomes_snapshot, bronze.schema)
    log(
        f"preferences: {bronze.num_rows:,} bronze records in a preference format, "
        f"{from_outcomes.num_rows:,} pairwise preferences in {OUTCOMES}"
    )
    if from_outcomes.num_rows:
        bronze = pa.concat_tables([bronze, from_outcomes])
    judgments = bronze.filter(pc.equal(bronze["format"], ChatFormat.JUDGMENT.value))
    judged = (
        _judged_conversations(warehouse, bronze_snapshot, judgments)
        if judgments.num_rows and bronze_snapshot is not None
        else {}
    )
    expand = ExpandStep(config.pairing, judged)
    expanded = run_stages(
        expand,
        bronze,
        executor,
        label="preferences: expand",
        batch_rows=batch_rows,
        kept_schema=CANDIDATES,
    )
    checked = run_stages(
        [
            RedactPairsStep(config.redaction),
            PairCheckStep(config.quality, DecontamStep(index, config.decontam)),
        ],
        expanded.kept,
        executor,
        label="preferences: redact, check pairs",
        batch_rows=batch_rows,
        kept_schema=CANDIDATES,
    )
    kept, duplicates = dedup_pairs(checked.kept.cast(CANDIDATES))
    rejections = pa.concat_tables(
        [expanded.rejected, checked.rejected, duplicates, empty_rejections()]
    ).cast(SILVER_REJECTIONS)
    rejections = rejections.take(
        pc.sort_indices(rejections, [("record_id", "ascending"), ("pair_id", "ascending")])
    )
    lineage = Lineage(
        "preferences",
        {BRONZE: bronze_snapshot, OUTCOMES: outcomes_snapshot, **eval_snapshots},
        config.config_hash(),
        {"posttrain.pairing-rule": config.pairing.rule.value}
        | config.decontam.summary_properties(),
    )
    refused_id = warehouse.overwrite(
        PREFERENCE_REJECTIONS, rejections, lineage, expected_snapshot=refused_snapshot
    )
    # Other builders (rollouts) append to silver.preferences: only this build's rows are
    # replaced, retried on a race rather than pinned to the snapshot read.
    pairs_id = warehouse.overwrite(PREFERENCES, kept, lineage, where=is_in("origin", OWN_ORIGINS))
    record_level = pc.sum(pc.is_null(rejections["pair_id"])).as_py() or 0
    return PreferenceReport(
        records_in=bronze.num_rows,
        records_rejected=record_level,
        candidates=expanded.kept.num_rows,
        kept=kept.num_rows,
        rejected_by_reason=counts_by(rejections, "reason"),
        margins=[m for m in kept["margin"].to_pylist() if m is not None],
        seconds=time.monotonic() - started,
        bronze_snapshot_id=bronze_snapshot,
        outcomes_snapshot_id=outcomes_snapshot,
        snapshot_id=pairs_id,
        rejections_snapshot_id=refused_id,
        counters=dict(expanded.counters) | dict(checked.counters),
    )


@dataclass(frozen=True)
class DpoReport:
    """What building ``gold.dpo`` did; ``snapshot_id`` is the one written."""

    rows: int
    snapshot_id: int | None
    preferences_snapshot_id: int | None  # the silver.preferences snapshot read


def build_dpo(warehouse: Warehouse) -> DpoReport:
    """Write ``gold.dpo`` from ``silver.preferences`` (every origin), sorted by ``pair_id``."""
    pinned, dpo_snapshot = warehouse.pin(PREFERENCES, DPO).values()
    preferences = (
        warehouse.read(PREFERENCES, columns=tuple(GOLD_DPO.names), snapshot_id=pinned)
        if pinned is not None
        else GOLD_DPO.empty_table()
    )
    preferences = preferences.take(pc.sort_indices(preferences, [("pair_id", "ascending")]))
    lineage = Lineage("dpo", {PREFERENCES: pinned}, "")
    written = warehouse.overwrite(DPO, preferences, lineage, expected_snapshot=dpo_snapshot)
    return DpoReport(preferences.num_rows, written, pinned)
