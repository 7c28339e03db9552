"""Find the broken invariants a crash between two commits can leave, and repair the safe ones.

Every normal command keeps the invariants (bronze ids unique, every bronze record in
exactly one silver table, duplicates pointing to kept records); but silver writes two
tables in two commits, and a process killed between them, or a table edited by hand, can
leave them broken. :func:`diagnose` reads the tables at one pinned set of snapshots and
lists what is wrong; :func:`repair` fixes what can be fixed without judgment:

* duplicate bronze rows (same ``record_id``): one row per id is kept (the earliest
  ingested), in one commit whose summary says so;
* silver rows that contradict bronze or each other (not in bronze, in both silver tables,
  repeated, or a duplicate pointing to a record silver does not keep) are removed, so the
  next silver build processes those records again from bronze and decides afresh.

Gold is never patched: it is rebuilt from silver, and the finding names the command.

Example:
    >>> findings = diagnose(warehouse)  # doctest: +SKIP
    >>> [repair.describe() for repair in repair(warehouse, findings)]  # doctest: +SKIP
    ['bronze.records: removed 12 duplicate rows (one row kept per record_id)']
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import In, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.checks import rematerialize_command
from posttrain.platform.lineage import CONFIG_HASH_KEY, Lineage, inputs_from_summary
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.silver.pipeline import chat_rows
from posttrain.platform.warehouse import Snapshots, Warehouse

BRONZE = TableName.BRONZE_RECORDS
CONVERSATIONS = TableName.SILVER_CONVERSATIONS
REJECTIONS = TableName.SILVER_REJECTIONS
GOLD_SFT = TableName.GOLD_SFT
ROLLOUTS = TableName.SILVER_ROLLOUTS
WATCHED = (BRONZE, CONVERSATIONS, REJECTIONS, GOLD_SFT)


@dataclass(frozen=True)
class Finding:
    """One broken invariant: which table, which records, and what ``--repair`` would do."""

    table: str
    problem: str
    record_ids: tuple[str, ...]
    fix: str  # what --repair does, or the command to run when it does nothing

    repairable: bool = True

    def describe(self) -> str:
        sample = ", ".join(self.record_ids[:3])
        more = f" (+{len(self.record_ids) - 3:,} more)" if len(self.record_ids) > 3 else ""
        return (
            f"{self.table}: {self.problem}: {len(self.record_ids):,} records, e.g. {sample}{more}"
        )


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found, at which snapshots, and what is merely pending."""

    snapshots: dict[str, int | None]
    findings: list[Finding]
    pending: int  # bronze records no silver build has processed yet (normal, not a problem)

    @property
    def healthy(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class Repair:
    """One commit ``repair`` made."""

    table: str
    rows_removed: int
    rows_kept: int
    snapshot_id: int | None
    what: str

    def describe(self) -> str:
        return f"{self.table}: {self.what} (snapshot {self.snapshot_id})"


def _column(warehouse: Warehouse, name: str, column: str, at: Snapshots) -> pa.Array:
    values = warehouse.column(name, column, at=at)
    return values.cast(pa.string()) if pa.types.is_large_string(values.type) else values


def _repeated(ids: pa.Array) -> pa.Array:
    if len(ids) == 0:
        return ids
    counts = pc.value_counts(ids)
    return counts.filter(pc.greater(counts.field("counts"), 1)).field("values")


def _not_in(values: pa.Array, reference: pa.Array) -> pa.Array:
    return pc.unique(pc.filter(values, pc.invert(pc.is_in(values, value_set=reference))))


def _sorted_ids(values: pa.Array) -> tuple[str, ...]:
    return tuple(sorted(str(value) for value in values.to_pylist()))


def diagnose(warehouse: Warehouse) -> Diagnosis:
    """Check the cross-table invariants on one consistent set of snapshots; writes nothing."""
    at = warehouse.pin(*WATCHED, ROLLOUTS)
    bronze = _column(warehouse, BRONZE, "record_id", at)
    kept = _column(warehouse, CONVERSATIONS, "record_id", at)
    rejected = _column(warehouse, REJECTIONS, "record_id", at)
    findings: list[Finding] = []

    def found(table: str, problem: str, ids: pa.Array, fix: str, repairable: bool = True) -> None:
        if len(ids):
            findings.append(Finding(table, problem, _sorted_ids(ids), fix, repairable))

    reprocess = "remove them from silver; the next silver build processes them again"
    found(
        BRONZE,
        "record_id appears more than once",
        _repeated(bronze),
        "keep one row per record_id (the earliest ingested)",
    )
    for table, ids in ((CONVERSATIONS, kept), (REJECTIONS, rejected)):
        found(table, "record_id appears more than once", _repeated(ids), reprocess)
        found(table, "records not in bronze.records", _not_in(ids, bronze), reprocess)
    found(
        CONVERSATIONS,
        "records both kept and rejected",
        pc.unique(pc.filter(kept, pc.is_in(kept, value_set=rejected))),
        reprocess,
    )
    found(
        REJECTIONS,
        "duplicates of a record silver does not keep",
        _dangling(warehouse, at, kept),
        reprocess,
    )
    if at[GOLD_SFT] is not None:
        gold = _column(warehouse, GOLD_SFT, "record_id", at)
        # gold.sft = silver's conversations + the rollouts rejection sampling kept.
        expected = pa.concat_arrays([kept, _kept_rollouts(warehouse, at)])
        mismatch = pa.concat_arrays([_not_in(gold, expected), _not_in(expected, gold)])
        found(
            GOLD_SFT,
            "records differing from silver.conversations and the kept rollouts",
            mismatch,
            f"rebuild gold: `{rematerialize_command(GOLD_SFT)}`",
            repairable=False,
        )
    accounted = pa.concat_arrays([kept, rejected])
    # Preference records are silver.preferences' to account for and rollouts
    # silver.rollouts', not silver's.
    chat = bronze
    if at[BRONZE] is not None and len(bronze):
        rows = warehouse.read(BRONZE, columns=("record_id", "format"), snapshot_id=at[BRONZE])
        chat = chat_rows(rows)["record_id"].combine_chunks().cast(pa.string())
    pending = len(_not_in(chat, accounted))
    return Diagnosis(snapshots=dict(at), findings=findings, pending=pending)


def _kept_rollouts(warehouse: Warehouse, at: Snapshots) -> pa.Array:
    """Record ids of the rollouts that rejection sampling sent to ``gold.sft``."""
    if at[ROLLOUTS] is None:
        return pa.array([], pa.string())
    rows = warehouse.read(
        ROLLOUTS,
        columns=("record_id",),
        row_filter="sft_status = 'kept'",
        snapshot_id=at[ROLLOUTS],
    )
    return rows["record_id"].combine_chunks().cast(pa.string())


def _dangling(warehouse: Warehouse, at: Snapshots, kept: pa.Array) -> pa.Array:
    """Duplicate rejections whose ``kept_record_id`` is not in silver.conversations."""
    if at[REJECTIONS] is None:
        return pa.array([], pa.string())
    rows = warehouse.read(
        REJECTIONS, columns=("record_id", "reason", "kept_record_id"), snapshot_id=at[REJECTIONS]
    )
    is_dup = pc.and_(
        pc.is_in(rows["reason"], value_set=pa.array(["exact_dup", "near_dup"])),
        pc.is_valid(rows["kept_record_id"]),
    )
    dups = rows.filter(is_dup)
    dangling = dups.filter(pc.invert(pc.is_in(dups["kept_record_id"], value_set=kept)))
    return dangling["record_id"].combine_chunks().cast(pa.string())


def repair(warehouse: Warehouse, diagnosis: Diagnosis) -> list[Repair]:
    """Fix the repairable findings, one commit per table, each on the snapshot diagnosed.

    Raises:
        CommitConflictError: a table changed since the diagnosis; nothing was written to
            it (run the doctor again).
    """
    doomed: dict[str, set[str]] = defaultdict(set)
    for finding in diagnosis.findings:
        if not finding.repairable:
            continue
        if finding.table == BRONZE:
            doomed[BRONZE].update(finding.record_ids)
        else:  # silver: remove the record from both tables so it is processed again
            doomed[CONVERSATIONS].update(finding.record_ids)
            doomed[REJECTIONS].update(finding.record_ids)
    repairs = []
    for table in (BRONZE, REJECTIONS, CONVERSATIONS):
        if doomed[table]:
            made = _repair_table(warehouse, table, sorted(doomed[table]), diagnosis.snapshots)
            if made is not None:
                repairs.append(made)
    return repairs


def _repair_table(warehouse: Warehouse, table: str, ids: list[str], at: Snapshots) -> Repair | None:
    snapshot_id = at[table]
    if snapshot_id is None:
        return None
    keys = pa.array(ids, pa.string())
    affected = In(term=Reference("record_id"), values={literal(value) for value in ids})
    rows = warehouse.read(table, row_filter=affected, snapshot_id=snapshot_id)
    if rows.num_rows == 0:
        return None
    if table == BRONZE:
        keep = _earliest_per_record(rows)
        what = (
            f"removed {rows.num_rows - keep.num_rows:,} duplicate rows of {len(ids):,} "
            "record ids (one row kept per record_id, the earliest ingested)"
        )
    else:
        keep = TABLES[table].schema.empty_table()
        what = (
            f"removed {rows.num_rows:,} rows of {len(ids):,} records; the next silver build "
            "processes them again"
        )
    # The repaired snapshot keeps the lineage of the one it fixes: removing rows changes
    # neither the inputs nor the rules (so the next silver build stays incremental).
    summary = warehouse.snapshot_summary(table, snapshot_id)
    lineage = Lineage(
        "doctor --repair",
        inputs_from_summary(summary),
        summary.get(CONFIG_HASH_KEY, ""),
        repair=what,
    )
    written = warehouse.replace_keys(
        table, "record_id", keys, keep, lineage, expected_snapshot=snapshot_id
    )
    return Repair(table, rows.num_rows - keep.num_rows, keep.num_rows, written, what)


def _earliest_per_record(rows: pa.Table) -> pa.Table:
    """One row per ``record_id``: the first ingested (ties: the smallest batch id)."""
    order = rows.take(
        pc.sort_indices(
            rows,
            [("record_id", "ascending"), ("ingested_at", "ascending"), ("batch_id", "ascending")],
        )
    )
    ids = order["record_id"].combine_chunks()
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)) if len(ids) > 1 else None
    mask = pa.concat_arrays([pa.array([True]), first]) if first is not None else pa.array([True])
    return order.filter(mask)
