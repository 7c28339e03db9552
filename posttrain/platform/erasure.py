"""``posttrain forget``: erase records from every table, every ref and every file.

Erasure is the one allowed rewrite of bronze. For each table holding a forgotten record it
rewrites ``main``, every curation branch and every tag (corpus versions included):

- rows whose ``record_id`` is forgotten are deleted (bronze, silver, rejections, gold.sft,
  and any later table keyed by record id), and so are rows made from one (``source_id``,
  e.g. an RL task in ``gold.rl_prompts`` built from a bronze record);
- a rejection whose ``kept_record_id`` is forgotten keeps its row with that pointer
  nulled (the duplicate is a different record; the pointer would name erased data);
- a pack (``record_ids`` + ``seq_lengths``) holding a forgotten record is rebuilt without
  its segment: the segment's tokens, mask and length are cut out, the pack keeps its id
  and the other records stay trained on, exactly as before (no re-tokenization, and
  ``packs_cover_records`` still holds); a pack left empty is removed.

Each rewrite is a copy-on-write commit whose summary names the erasure; a second commit
then seals the ref so that no manifest it reaches keeps the deleted files' entries (their
column bounds can hold the first bytes of the erased values). Version tags move to the
rewritten snapshots through :func:`~posttrain.platform.versions.record_recut`, so each
move is a ``recut`` event in ``lineage.corpus_versions``; other tags move in place. Every
change is a row of ``lineage.erasures``.

Then snapshots that no ref holds and that are older than the retention are expired, and
the files only they reached (data files, manifests, manifest lists), the older metadata
files, and unreferenced files older than the erasure are deleted.

Example:
    >>> report = forget(warehouse, record_ids=["a1b2"])  # doctest: +SKIP
    >>> print(report.describe())  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import BooleanExpression, EqualTo, In, Or, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.manifest import ManifestEntryStatus
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    SetSnapshotRefUpdate,
)

from posttrain.platform.errors import PosttrainError
from posttrain.platform.lineage import STAGE_KEY
from posttrain.platform.query import parse_where
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse, _owning_retries

ERASURE_KEY = "posttrain.erasure.id"
_TMP_PREFIX = "posttrain-erasure-"
# Unreferenced files younger than this are left alone: a concurrent writer may be about
# to commit them.
ORPHAN_GRACE = timedelta(hours=1)
_SKIPPED = {TableName.LINEAGE_ERASURES, TableName.LINEAGE_CORPUS_VERSIONS}


class ErasureError(PosttrainError):
    """``posttrain forget`` cannot do what was asked (nothing matched, a conflict)."""


@dataclass(frozen=True)
class RefChange:
    """One ref of one table rewritten by an erasure."""

    table: str
    ref: str
    ref_type: str
    rows_removed: int
    rows_rewritten: int
    snapshot_before: int
    snapshot_after: int | None


@dataclass
class ErasureReport:
    """What :func:`forget` changed."""

    erasure_id: str
    record_ids: list[str]
    changes: list[RefChange] = field(default_factory=list)
    versions_recut: list[str] = field(default_factory=list)
    snapshots_expired: int = 0
    snapshots_retained: int = 0
    files_deleted: int = 0
    bytes_deleted: int = 0

    def describe(self) -> str:
        lines = [f"erasure {self.erasure_id}: {len(self.record_ids)} record(s) forgotten"]
        for change in self.changes:
            lines.append(
                f"  {change.table}@{change.ref} ({change.ref_type}): {change.rows_removed} "
                f"row(s) removed, {change.rows_rewritten} rewritten, snapshot "
                f"{change.snapshot_before} → {change.snapshot_after}"
            )
        if self.versions_recut:
            lines.append(f"  versions recut: {', '.join(self.versions_recut)}")
        lines.append(
            f"  {self.snapshots_expired} snapshot(s) expired, {self.files_deleted} file(s) "
            f"deleted ({self.bytes_deleted:,} bytes)"
        )
        if self.snapshots_retained:
            lines.append(
                f"  {self.snapshots_retained} older snapshot(s) kept for the retention "
                "period still hold the records: run `posttrain forget --expire` after it"
            )
        return "\n".join(lines)


# -- which records --------------------------------------------------------------------------


def _selected_ids(
    warehouse: Warehouse,
    record_ids: Iterable[str],
    source_uri: str | None,
    where: str | None,
) -> list[str]:
    ids = set(record_ids)
    if (source_uri or where) and warehouse.exists(TableName.BRONZE_RECORDS):
        bronze = warehouse.table(TableName.BRONZE_RECORDS)
        if source_uri:
            found = bronze.scan(
                row_filter=EqualTo(term=Reference("source_uri"), value=literal(source_uri)),
                selected_fields=("record_id",),
            ).to_arrow()
            ids |= set(found["record_id"].to_pylist())
        if where:
            found = bronze.scan(
                row_filter=parse_where(bronze, where), selected_fields=("record_id",)
            ).to_arrow()
            ids |= set(found["record_id"].to_pylist())
    return sorted(ids)


# -- rewriting one snapshot -------------------------------------------------------------------


def _in(column: str, ids: list[str]) -> BooleanExpression:
    return In(term=Reference(column), values={literal(value) for value in ids})


def _without_segments(packs: pa.Table, doomed: set[str]) -> pa.Table:
    """``packs`` with the segments of ``doomed`` records cut out; empty packs dropped."""
    rows = []
    for pack in packs.to_pylist():
        ids = pack["record_ids"] or []
        lengths = pack["seq_lengths"] or []
        input_ids, masks = pack["input_ids"] or [], pack["assistant_masks"] or []
        kept_ids: list[str] = []
        kept_lengths: list[int] = []
        kept_tokens: list[int] = []
        kept_masks: list[int] = []
        offset = 0
        for record_id, length in zip(ids, lengths, strict=True):
            if record_id not in doomed:
                kept_ids.append(record_id)
                kept_lengths.append(length)
                kept_tokens += input_ids[offset : offset + length]
                kept_masks += masks[offset : offset + length]
            offset += length
        if kept_ids:
            rows.append(
                {
                    **pack,
                    "record_ids": kept_ids,
                    "seq_lengths": kept_lengths,
                    "input_ids": kept_tokens,
                    "assistant_masks": kept_masks,
                    "num_tokens": len(kept_tokens),
                }
            )
    return pa.Table.from_pylist(rows, schema=packs.schema)


def _plan(
    table: Table, snapshot_id: int, ids: list[str]
) -> tuple[BooleanExpression, pa.Table, int] | None:
    """What to replace in ``snapshot_id``: (rows to remove, rows to put back, rows erased)."""
    names = set(table.schema().column_names)
    doomed = set(ids)
    if {"record_ids", "seq_lengths", "input_ids"} <= names and "pack_id" in names:
        index = table.scan(
            snapshot_id=snapshot_id, selected_fields=("pack_id", "record_ids")
        ).to_arrow()
        flat = pc.list_flatten(index["record_ids"])
        parents = pc.list_parent_indices(index["record_ids"])
        hit = pc.is_in(flat, value_set=pa.array(ids, pa.string()))
        pack_ids = sorted(set(pc.take(index["pack_id"], pc.filter(parents, hit)).to_pylist()))
        if not pack_ids:
            return None
        holding = In(term=Reference("pack_id"), values={literal(int(p)) for p in pack_ids})
        packs = table.scan(snapshot_id=snapshot_id, row_filter=holding).to_arrow()
        erased = int(pc.sum(hit).as_py() or 0)
        return holding, _without_segments(packs, doomed), erased
    filters: list[BooleanExpression] = []
    # The columns that name a record: the row is that record's (record_id), or was made
    # from it (source_id: an RL task taken from a bronze record).
    owners = [column for column in ("record_id", "source_id") if column in names]
    filters = [_in(column, ids) for column in owners]
    if "kept_record_id" in names:
        filters.append(_in("kept_record_id", ids))
    if not filters:
        return None
    scope = functools.reduce(Or, filters)
    rows = table.scan(snapshot_id=snapshot_id, row_filter=scope).to_arrow()
    if rows.num_rows == 0:
        return None
    doomed_ids = pa.array(ids, pa.string())
    keep = pa.array([True] * rows.num_rows)
    for column in owners:
        keep = pc.and_(
            keep, pc.invert(pc.fill_null(pc.is_in(rows[column], value_set=doomed_ids), False))
        )
    back = rows.filter(keep)
    erased = rows.num_rows - back.num_rows
    if "kept_record_id" in names and back.num_rows:
        pointer = back["kept_record_id"]
        nulled = pc.if_else(pc.is_in(pointer, value_set=pa.array(ids, pa.string())), None, pointer)
        back = back.set_column(
            back.schema.get_field_index("kept_record_id"), "kept_record_id", nulled
        )
    return scope, back, erased


def _rewrite_branch(
    table: Table, branch: str, scope: BooleanExpression, back: pa.Table, summary: dict[str, str]
) -> int:
    """Replace ``scope`` by ``back`` on ``branch`` and seal it; the new head snapshot id."""
    table = _owning_retries(table)
    if back.num_rows:
        table.overwrite(back, overwrite_filter=scope, snapshot_properties=summary, branch=branch)
    else:
        table.delete(scope, snapshot_properties=summary, branch=branch)
    # The commit above keeps the deleted files' manifest entries (with their column bounds)
    # in a manifest of its own; an empty append drops manifests that hold no live file.
    with table.transaction() as tx:
        tx.update_snapshot(
            snapshot_properties={**summary, STAGE_KEY: "erasure-seal"}, branch=branch
        ).fast_append().commit()
    return table.metadata.refs[branch].snapshot_id


# -- the erasure ------------------------------------------------------------------------------


def _summary(erasure_id: str, erased: int) -> dict[str, str]:
    return {STAGE_KEY: "erasure", ERASURE_KEY: erasure_id, "posttrain.erasure.rows": str(erased)}


def _erase_table(
    warehouse: Warehouse, name: str, ids: list[str], erasure_id: str
) -> tuple[list[RefChange], dict[str, int]]:
    """Rewrite every ref of ``name``; the changes and each moved tag's new snapshot."""
    changes: list[RefChange] = []
    moved_tags: dict[str, int] = {}
    rewritten: dict[int, int] = {}  # old snapshot → its rewrite, shared by refs on it
    table = warehouse.table(name)
    refs = sorted(
        table.metadata.refs.items(),
        key=lambda item: (item[0] != MAIN_BRANCH, item[1].snapshot_ref_type != "branch"),
    )
    for ref_name, ref in refs:
        if ref_name.startswith(_TMP_PREFIX):
            continue
        before = ref.snapshot_id
        table = warehouse.table(name)
        plan = _plan(table, before, ids)
        if plan is None:
            continue
        scope, back, erased = plan
        summary = _summary(erasure_id, erased)
        if ref.snapshot_ref_type == SnapshotRefType.BRANCH:
            try:
                after = _rewrite_branch(table, ref_name, scope, back, summary)
            except CommitFailedException as exc:
                raise ErasureError(
                    f"{name}@{ref_name} moved during the erasure ({str(exc).splitlines()[0]}); "
                    "run `posttrain forget` again: it only removes what is left"
                ) from None
            rewritten.setdefault(before, after)
        else:
            after = rewritten.get(before) or _rewrite_tag(
                warehouse, name, before, scope, back, summary
            )
            rewritten[before] = after
            moved_tags[ref_name] = after
        changes.append(
            RefChange(
                name, ref_name, str(ref.snapshot_ref_type), erased, back.num_rows, before, after
            )
        )
    return changes, moved_tags


def _rewrite_tag(
    warehouse: Warehouse,
    name: str,
    snapshot_id: int,
    scope: BooleanExpression,
    back: pa.Table,
    summary: dict[str, str],
) -> int:
    """A rewrite of ``snapshot_id`` on a temporary branch; the temporary branch is removed."""
    branch = _TMP_PREFIX + uuid.uuid4().hex[:8]
    table = warehouse.table(name)
    table.manage_snapshots().create_branch(snapshot_id, branch).commit()
    try:
        return _rewrite_branch(warehouse.table(name), branch, scope, back, summary)
    finally:
        warehouse.table(name).manage_snapshots().remove_branch(branch).commit()


def _remove_leftover_branches(warehouse: Warehouse, name: str) -> bool:
    """Remove the temporary branches of an erasure that was killed; whether there were any
    (their snapshots may hold erased rows, so the table's old snapshots are expired)."""
    table = warehouse.table(name)
    stale = [ref for ref in table.metadata.refs if ref.startswith(_TMP_PREFIX)]
    if not stale:
        return False
    with table.manage_snapshots() as manage:
        for ref in stale:
            manage.remove_branch(ref)
    return True


def _move_tags(
    warehouse: Warehouse, name: str, moved: dict[str, int], requested_by: str
) -> list[tuple[str, str]]:
    """Move the non-version tags; return the version tags (corpus, version) left to recut."""
    from posttrain.platform.corpora import corpora_of

    versions: list[tuple[str, str]] = []
    for tag, snapshot_id in moved.items():
        corpus, sep, version = tag.partition("/")
        if sep and corpus in corpora_of(name):
            versions.append((corpus, version))
            continue
        table = warehouse.table(name)
        current = table.metadata.refs[tag].snapshot_id
        table._do_commit(
            (
                SetSnapshotRefUpdate(  # type: ignore[call-arg]
                    ref_name=tag, type=SnapshotRefType.TAG, snapshot_id=snapshot_id
                ),
            ),
            (
                AssertRefSnapshotId(  # type: ignore[call-arg]
                    ref=tag, snapshot_id=current
                ),
            ),
        )
    del requested_by
    return versions


def _selector(
    record_ids: Iterable[str], source_uri: str | None, where: str | None
) -> tuple[str, str]:
    if where:
        # The expression may quote the erased values themselves: keep only its hash.
        return "where", "sha256:" + hashlib.sha256(where.encode()).hexdigest()
    if source_uri:
        return "source_uri", source_uri
    return "record_id", ",".join(sorted(record_ids))


def forget(
    warehouse: Warehouse,
    *,
    record_ids: Iterable[str] = (),
    source_uri: str | None = None,
    where: str | None = None,
    retention: timedelta = timedelta(0),
    requested_by: str | None = None,
) -> ErasureReport:
    """Erase the selected records from every table, ref and file of the warehouse.

    ``where`` is a filter on ``bronze.records`` (pyiceberg syntax); ``source_uri`` selects
    every record read from that file. Snapshots younger than ``retention`` are kept (and
    with them the records, until :func:`expire` runs after the retention).

    Raises:
        ErasureError: nothing matched, or a ref moved during the erasure.
    """
    from posttrain.platform.curation import default_curator
    from posttrain.platform.versions import record_recut

    record_ids = list(record_ids)
    requested_by = requested_by or default_curator()
    ids = _selected_ids(warehouse, record_ids, source_uri, where)
    if not ids:
        raise ErasureError("no record matches: nothing to forget")
    started = time.time()
    report = ErasureReport(uuid.uuid4().hex[:12], ids)
    versions: dict[tuple[str, str], dict[str, int | None]] = {}
    leftovers: set[str] = set()
    for name in warehouse.table_names():
        if name in _SKIPPED:
            continue
        if _remove_leftover_branches(warehouse, name):
            leftovers.add(name)
        changes, moved = _erase_table(warehouse, name, ids, report.erasure_id)
        report.changes += changes
        for corpus_version in _move_tags(warehouse, name, moved, requested_by):
            tag = "/".join(corpus_version)
            versions.setdefault(corpus_version, {})[name] = moved[tag]
    for (corpus, version), snapshots in sorted(versions.items()):
        record_recut(warehouse, corpus, version, snapshots, created_by=requested_by)
        report.versions_recut.append(f"{corpus}/{version}")
    _record(warehouse, report, _selector(record_ids, source_uri, where), requested_by)
    touched = sorted({change.table for change in report.changes} | leftovers)
    expired = expire(warehouse, touched, retention, files_before=started)
    report.snapshots_expired, report.snapshots_retained = expired[0], expired[1]
    report.files_deleted, report.bytes_deleted = expired[2], expired[3]
    return report


def _record(
    warehouse: Warehouse, report: ErasureReport, selector: tuple[str, str], requested_by: str
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "erasure_id": report.erasure_id,
            "table_name": change.table,
            "ref": change.ref,
            "ref_type": change.ref_type,
            "rows_removed": change.rows_removed,
            "rows_rewritten": change.rows_rewritten,
            "snapshot_before": change.snapshot_before,
            "snapshot_after": change.snapshot_after,
            "record_ids": report.record_ids,
            "selector_kind": selector[0],
            "selector": selector[1],
            "requested_by": requested_by,
            "erased_at": now,
        }
        for change in report.changes
    ]
    if not rows:
        return
    data = pa.Table.from_pylist(rows, schema=TABLES[TableName.LINEAGE_ERASURES].schema)
    from posttrain.platform.lineage import Lineage

    warehouse.append(
        TableName.LINEAGE_ERASURES,
        data,
        Lineage("erasure", properties={ERASURE_KEY: report.erasure_id}),
    )


# -- expiry and file deletion ---------------------------------------------------------------


def _local(path: str) -> Path | None:
    if path.startswith("file://"):
        return Path(path.removeprefix("file://"))
    if path.startswith("/"):
        return Path(path)
    return None


def _reachable(table: Table, snapshot_ids: Iterable[int]) -> set[str]:
    """Manifest lists, manifests and live data/delete files of the snapshots."""
    files: set[str] = set()
    for snapshot_id in snapshot_ids:
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            continue
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                if entry.status != ManifestEntryStatus.DELETED:
                    files.add(entry.data_file.file_path)
    return files


def expire(
    warehouse: Warehouse,
    names: Iterable[str],
    retention: timedelta = timedelta(0),
    *,
    files_before: float | None = None,
    orphan_grace: timedelta = ORPHAN_GRACE,
) -> tuple[int, int, int, int]:
    """Expire the snapshots of ``names`` that no ref holds and that are older than
    ``retention``, and delete the files nothing left reaches.

    Deleted: the files only expired snapshots reached, the table's previous metadata
    files, and any other file under the table's folder that nothing reaches and that is
    older than ``files_before`` minus ``orphan_grace`` (a failed write's leftovers; a
    concurrent writer's files, written before its commit, are younger than that).

    Returns:
        (snapshots expired, unreferenced snapshots kept for the retention, files deleted,
        bytes deleted)
    """
    cutoff = datetime.now(UTC) - retention
    before = (files_before if files_before is not None else time.time()) - (
        orphan_grace.total_seconds()
    )
    expired = kept = deleted = freed = 0
    for name in names:
        table = warehouse.table(name)
        held = {ref.snapshot_id for ref in table.metadata.refs.values()}
        doomed = [
            s.snapshot_id
            for s in table.metadata.snapshots
            if s.snapshot_id not in held and s.timestamp_ms < cutoff.timestamp() * 1000
        ]
        kept += sum(1 for s in table.metadata.snapshots if s.snapshot_id not in held) - len(doomed)
        if doomed:
            doomed_files = _reachable(table, doomed)
            table.maintenance.expire_snapshots().by_ids(doomed).commit()
            expired += len(doomed)
        else:
            doomed_files = set()
        table = warehouse.table(name)
        live = _reachable(table, [s.snapshot_id for s in table.metadata.snapshots])
        live.add(table.metadata_location)
        # Previous metadata files were committed: no writer is still about to use them.
        previous = {entry.metadata_file for entry in table.metadata.metadata_log}
        candidates = {
            p for p in (_local(f) for f in (doomed_files | previous) - live) if p is not None
        }
        root = _local(table.location())
        if root is not None and root.exists():
            live_paths = {p for p in (_local(f) for f in live) if p is not None}
            for path in root.rglob("*"):
                if path.is_file() and path not in live_paths and path.stat().st_mtime < before:
                    candidates.add(path)
        current = _local(table.metadata_location)
        for path in candidates:
            if path == current or not path.exists():
                continue
            freed += path.stat().st_size
            os.remove(path)
            deleted += 1
    return expired, kept, deleted, freed


__all__ = ["ErasureError", "ErasureReport", "RefChange", "expire", "forget"]
