"""Curation on branches: write, audit, publish.

A curator cuts an Iceberg branch of one table (``posttrain branch create TABLE review-x``),
edits it (drop rows by filter, fix one record, relabel the rows a filter matches), and
publishes it: ``main`` fast-forwards to the branch's head only if the table's checks pass on
that head and ``main`` is still at the snapshot the branch was cut from. Until then, readers
of ``main`` (``show``, ``query``, assets, loaders) see nothing of the branch, because they
read the table's current snapshot, which only ``main`` moves.

Lineage of an edit lives in the branch snapshot's summary (``posttrain.edit.*``): the
action, the curator, the filter or the fixed record id and the snapshot its original row
is in. Publishing keeps those snapshots as ancestors of ``main``. A branch's base snapshot,
curator and creation time are table properties (``posttrain.branch.<name>.*``).

Publishing is one catalog commit that sets ``main`` to the branch head and removes the
branch, with the requirements that ``main`` is still at the base snapshot and the branch
still at the audited head (``AssertRefSnapshotId``). The catalog checks them atomically
with its compare-and-swap on the metadata location, so of two racing publishes exactly
one wins; the other is refused with what moved.

Example:
    >>> create_branch(wh, "gold.sft", "review-x", curator="ana")  # doctest: +SKIP
    >>> drop_rows(wh, "gold.sft", "review-x", "source = 'spam'", curator="ana")  # doctest: +SKIP
    >>> publish(wh, "gold.sft", "review-x", curator="ana")  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import BooleanExpression, EqualTo, In, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    RemovePropertiesUpdate,
    RemoveSnapshotRefUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
)
from sqlalchemy.exc import OperationalError

from posttrain.platform import checks
from posttrain.platform.errors import CatalogError, ConfigError, PosttrainError
from posttrain.platform.lineage import STAGE_KEY, Lineage
from posttrain.platform.query import parse_where
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse

BRANCH_PROPERTY = "posttrain.branch."
EDIT_PREFIX = "posttrain.edit."
CURATOR_KEY = "posttrain.curator"
_BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RESERVED = {MAIN_BRANCH}


class CurationError(PosttrainError):
    """A branch edit or a branch operation cannot be done as asked."""


class PublishRefusedError(CurationError):
    """``publish`` refused: the checks failed on the branch, or ``main`` moved."""


def default_curator() -> str:
    """Who is editing: the login name (``--curator`` overrides it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


@dataclass(frozen=True)
class BranchInfo:
    """One curation branch of a table."""

    table: str
    name: str
    base_snapshot_id: int | None
    head_snapshot_id: int
    curator: str
    created_at: str
    edits: int

    def describe(self) -> str:
        return (
            f"{self.table}@{self.name}: head {self.head_snapshot_id}, cut from "
            f"{self.base_snapshot_id} by {self.curator} at {self.created_at}, {self.edits} edit(s)"
        )


@dataclass(frozen=True)
class EditResult:
    """What one branch edit changed."""

    table: str
    branch: str
    action: str
    rows: int
    snapshot_id: int | None

    def describe(self) -> str:
        where = f"{self.table}@{self.branch}"
        return f"{self.action}: {self.rows:,} row(s) of {where} → snapshot {self.snapshot_id}"


@dataclass(frozen=True)
class PublishResult:
    """``main`` of ``table`` now at ``snapshot_id`` (it was at ``previous``)."""

    table: str
    branch: str
    previous: int | None
    snapshot_id: int
    checks: list[tuple[str, checks.CheckOutcome]]

    def describe(self) -> str:
        return (
            f"published {self.table}@{self.branch}: main {self.previous} → {self.snapshot_id} "
            f"({len(self.checks)} checks passed)"
        )


def _property(branch: str, key: str) -> str:
    return f"{BRANCH_PROPERTY}{branch}.{key}"


def _validate_name(branch: str) -> None:
    if branch in _RESERVED or not _BRANCH_NAME.match(branch):
        raise ConfigError(
            f"branch name {branch!r}: use letters, digits, '.', '_' or '-' (not 'main')"
        )


def _branch_head(table: Table, name: str, branch: str) -> int:
    ref = table.metadata.refs.get(branch)
    if ref is None or ref.snapshot_ref_type != SnapshotRefType.BRANCH:
        known = sorted(
            r
            for r, v in table.metadata.refs.items()
            if v.snapshot_ref_type == SnapshotRefType.BRANCH
        )
        raise CurationError(f"{name} has no branch {branch!r}; branches: {', '.join(known)}")
    return ref.snapshot_id


def _main_id(table: Table) -> int | None:
    ref = table.metadata.refs.get(MAIN_BRANCH)
    return ref.snapshot_id if ref else None


def _retrying(attempt: Callable[[], Any], what: str, tries: int = 12) -> Any:
    """Run ``attempt`` again when the embedded SQLite catalog is busy (lock timeout)."""
    for number in range(tries):
        try:
            return attempt()
        except OperationalError as exc:
            if "locked" not in str(exc).lower() or number + 1 == tries:
                raise CatalogError(f"{what}: the catalog stayed busy ({exc})") from None
            time.sleep(min(2.0, 0.05 * 2**number))
    raise AssertionError("unreachable")


def branch_snapshot(warehouse: Warehouse, name: str, branch: str) -> int:
    """The head snapshot id of ``branch`` of ``name`` (for reading ``TABLE@branch``)."""
    return _branch_head(warehouse.table(name), name, branch)


def create_branch(
    warehouse: Warehouse, name: str, branch: str, *, curator: str | None = None
) -> BranchInfo:
    """Cut ``branch`` of ``name`` at ``main``'s current snapshot.

    One commit creates the ref and records the base snapshot, curator and time as table
    properties; it requires that no ref of that name exists (two curators creating the same
    branch at once: one wins, the other is told it exists).
    """
    _validate_name(branch)
    curator = curator or default_curator()
    table = warehouse.table(name)
    if branch in table.metadata.refs:
        raise CurationError(f"{name} already has a ref named {branch!r}")
    base = _main_id(table)
    if base is None:
        raise CurationError(f"{name} has no snapshot yet: there is nothing to curate")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    updates = (
        SetSnapshotRefUpdate(  # type: ignore[call-arg]
            ref_name=branch, type=SnapshotRefType.BRANCH, snapshot_id=base
        ),
        SetPropertiesUpdate(
            updates={
                _property(branch, "base"): str(base),
                _property(branch, "curator"): curator,
                _property(branch, "created-at"): now,
            }
        ),
    )
    requirements = (
        AssertRefSnapshotId(  # type: ignore[call-arg]
            ref=branch, snapshot_id=None
        ),
    )
    try:
        _retrying(lambda: table._do_commit(updates, requirements), f"create {name}@{branch}")
    except CommitFailedException:
        raise CurationError(f"{name} already has a ref named {branch!r}") from None
    return _info(warehouse.table(name), name, branch)


def _edits(table: Table, head: int, base: int | None) -> int:
    """Edits on the branch since ``base`` (an overwrite commits two snapshots for one edit)."""
    edits: set[str] = set()
    snapshot = table.snapshot_by_id(head)
    while snapshot is not None and snapshot.snapshot_id != base:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if EDIT_PREFIX + "id" in summary:
            edits.add(summary[EDIT_PREFIX + "id"])
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return len(edits)


def _info(table: Table, name: str, branch: str) -> BranchInfo:
    head = _branch_head(table, name, branch)
    props = table.metadata.properties
    base_text = props.get(_property(branch, "base"))
    base = int(base_text) if base_text else None
    return BranchInfo(
        table=name,
        name=branch,
        base_snapshot_id=base,
        head_snapshot_id=head,
        curator=props.get(_property(branch, "curator"), "?"),
        created_at=props.get(_property(branch, "created-at"), "?"),
        edits=_edits(table, head, base),
    )


def list_branches(warehouse: Warehouse, name: str | None = None) -> list[BranchInfo]:
    """Every branch other than ``main`` of ``name`` (of every table when ``None``)."""
    names = [name] if name else warehouse.table_names()
    found = []
    for table_name in names:
        table = warehouse.table(table_name)
        for ref_name, ref in sorted(table.metadata.refs.items()):
            if ref.snapshot_ref_type == SnapshotRefType.BRANCH and ref_name != MAIN_BRANCH:
                found.append(_info(table, table_name, ref_name))
    return found


# -- edits on a branch --------------------------------------------------------------------


def _key(name: str) -> str:
    spec = TABLES.get(name)
    if spec is None or len(spec.key) != 1:
        raise CurationError(f"{name} has no single key column; curation edits need one")
    return spec.key[0]


def _edit_lineage(action: str, branch: str, curator: str, extra: Mapping[str, str]) -> Lineage:
    return Lineage(
        "curation",
        properties={
            EDIT_PREFIX + "action": action,
            EDIT_PREFIX + "id": uuid.uuid4().hex[:12],
            EDIT_PREFIX + "branch": branch,
            CURATOR_KEY: curator,
            **{EDIT_PREFIX + k: v for k, v in extra.items()},
        },
    )


def _commit_on_branch(
    warehouse: Warehouse,
    name: str,
    branch: str,
    expected_head: int,
    write: Callable[[Table], None],
) -> int:
    """Run ``write`` on ``branch`` if its head is still ``expected_head``; the new head."""
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    if head != expected_head:
        raise CurationError(
            f"{name}@{branch} moved from {expected_head} to {head} while this edit was "
            "prepared; run it again"
        )
    try:
        _retrying(lambda: write(table), f"edit {name}@{branch}")
    except CommitFailedException as exc:
        raise CurationError(
            f"{name}@{branch}: another edit committed first ({str(exc).splitlines()[0]}); "
            "run it again"
        ) from None
    return _branch_head(warehouse.table(name), name, branch)


def _read_branch(
    warehouse: Warehouse, name: str, head: int, expression: BooleanExpression
) -> pa.Table:
    return warehouse.table(name).scan(row_filter=expression, snapshot_id=head).to_arrow()


def drop_rows(
    warehouse: Warehouse, name: str, branch: str, where: str, *, curator: str | None = None
) -> EditResult:
    """Delete the rows of ``name``@``branch`` matching ``where`` (pyiceberg filter syntax)."""
    curator = curator or default_curator()
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    expression = parse_where(table, where)
    matched = _read_branch(warehouse, name, head, expression).num_rows
    if matched == 0:
        raise CurationError(f"--where {where!r} matches no row of {name}@{branch}")
    lineage = _edit_lineage("drop", branch, curator, {"filter": where, "rows": str(matched)})
    snapshot = _commit_on_branch(
        warehouse,
        name,
        branch,
        head,
        lambda t: t.delete(expression, snapshot_properties=lineage.summary(), branch=branch),
    )
    return EditResult(name, branch, "drop", matched, snapshot)


def _patched(rows: pa.Table, patch: Mapping[str, Any], schema: pa.Schema) -> pa.Table:
    """``rows`` with each column of ``patch`` set to its value, cast to ``schema``."""
    records = rows.to_pylist()
    for record in records:
        record.update(patch)
    try:
        return pa.Table.from_pylist(records, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise CurationError(f"the new values do not fit the table's schema: {exc}") from None


def _check_columns(name: str, columns: list[str], key: str) -> pa.Schema:
    schema = TABLES[name].schema
    unknown = [column for column in columns if column not in schema.names]
    if unknown:
        raise CurationError(
            f"{name} has no column {unknown[0]!r}; columns: {', '.join(schema.names)}"
        )
    if key in columns:
        raise CurationError(
            f"{key} is {name}'s key and keeps the record's lineage: it cannot be edited"
        )
    return schema


def fix_record(
    warehouse: Warehouse,
    name: str,
    branch: str,
    record: str,
    patch: Mapping[str, Any],
    *,
    curator: str | None = None,
) -> EditResult:
    """Replace the columns in ``patch`` of the one row whose key is ``record``.

    The fixed row keeps its key, so everything downstream still joins to it; the snapshot
    summary names the record, the snapshot holding its original row, the columns changed
    and the curator (``posttrain.edit.fixed-from``).
    """
    curator = curator or default_curator()
    if not patch:
        raise CurationError("the fix changes no column: give a JSON object of column → value")
    key = _key(name)
    schema = _check_columns(name, list(patch), key)
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    key_value: Any = int(record) if pa.types.is_integer(schema.field(key).type) else record
    expression = EqualTo(term=Reference(key), value=literal(key_value))
    rows = _read_branch(warehouse, name, head, expression)
    if rows.num_rows != 1:
        raise CurationError(
            f"{name}@{branch} has {rows.num_rows} rows with {key} = {record!r}; a fix needs one"
        )
    fixed = _patched(rows, patch, schema)
    lineage = _edit_lineage(
        "fix",
        branch,
        curator,
        {
            "fixed-from": f"{record}@{head}",
            "columns": ",".join(sorted(patch)),
            "rows": "1",
        },
    )
    snapshot = _commit_on_branch(
        warehouse,
        name,
        branch,
        head,
        lambda t: t.overwrite(
            fixed, overwrite_filter=expression, snapshot_properties=lineage.summary(), branch=branch
        ),
    )
    return EditResult(name, branch, "fix", 1, snapshot)


def relabel(
    warehouse: Warehouse,
    name: str,
    branch: str,
    where: str,
    column: str,
    value: Any,
    *,
    curator: str | None = None,
) -> EditResult:
    """Set ``column`` to ``value`` on every row of ``name``@``branch`` matching ``where``."""
    curator = curator or default_curator()
    key = _key(name)
    schema = _check_columns(name, [column], key)
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    expression = parse_where(table, where)
    rows = _read_branch(warehouse, name, head, expression)
    if rows.num_rows == 0:
        raise CurationError(f"--where {where!r} matches no row of {name}@{branch}")
    relabeled = _patched(rows, {column: value}, schema)
    # Replace exactly the rows read, by key: a filter re-evaluated on the new values could
    # match other rows.
    doomed = In(term=Reference(key), values={literal(v) for v in rows[key].to_pylist()})
    lineage = _edit_lineage(
        "relabel",
        branch,
        curator,
        {"filter": where, "columns": column, "rows": str(rows.num_rows)},
    )
    snapshot = _commit_on_branch(
        warehouse,
        name,
        branch,
        head,
        lambda t: t.overwrite(
            relabeled, overwrite_filter=doomed, snapshot_properties=lineage.summary(), branch=branch
        ),
    )
    return EditResult(name, branch, "relabel", rows.num_rows, snapshot)


def parse_patch(text: str) -> dict[str, Any]:
    """A JSON object of column → new value (``--set '{"license": "MIT"}'``)."""
    try:
        patch = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the fix is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(patch, dict):
        raise ConfigError("the fix must be a JSON object of column → value")
    return patch


# -- audit and publish ----------------------------------------------------------------------


def _subset_of(
    warehouse: Warehouse, name: str, upstream: str, at: dict[str, int | None]
) -> checks.CheckOutcome:
    """Every record of ``name`` (at the branch) is in ``upstream`` (at main): curation may
    remove or change rows, never invent one."""
    down = checks._ids(warehouse, name, at=at)
    up = checks._ids(warehouse, upstream)
    invented = pc.filter(down, pc.invert(pc.is_in(down, value_set=up)))
    if len(invented):
        return checks.CheckOutcome(
            False,
            f"{len(invented):,} records of {name} are not in {upstream}, "
            f"e.g. {checks._sample(invented)}",
            {"invented": len(invented)},
        )
    return checks.CheckOutcome(True, f"every record of {name} is in {upstream}", {})


_UPSTREAM = {
    TableName.SILVER_CONVERSATIONS: TableName.BRONZE_RECORDS,
    TableName.SILVER_REJECTIONS: TableName.BRONZE_RECORDS,
    TableName.GOLD_SFT: TableName.SILVER_CONVERSATIONS,
}


def branch_checks(
    warehouse: Warehouse, name: str, snapshot_id: int
) -> list[tuple[str, checks.CheckOutcome]]:
    """The checks a branch head must pass to be published: key uniqueness, schema, and the
    layer's invariant (its records trace to the layer above; packs fit and are consistent)."""
    at: dict[str, int | None] = {name: snapshot_id}
    results = [("schema", checks.schema_matches(warehouse, name, at=at))]
    if name in TABLES and len(TABLES[name].key) == 1:
        results.append(("keys_unique", checks.keys_unique(warehouse, name, at=at)))
    upstream = _UPSTREAM.get(TableName(name)) if name in set(TableName) else None
    if upstream is not None and warehouse.exists(upstream):
        results.append((f"records_in_{upstream}", _subset_of(warehouse, name, upstream, at)))
    if name == TableName.GOLD_SFT_PACKED:
        longest = max(
            (
                int(v)
                for v in checks._read(warehouse, name, ("num_tokens",), at)[
                    "num_tokens"
                ].to_pylist()
                if v is not None
            ),
            default=0,
        )
        # Consistency of each pack (lengths add up; masks aligned); the length limit is the
        # build's, which a curation edit cannot raise.
        results.append(("packs_fit", checks.packs_fit(warehouse, max(longest, 1), at=at)))
    return results


def _who(table: Table, snapshot_id: int | None) -> str:
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot is None:
        return "unknown"
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    stage = summary.get(STAGE_KEY, snapshot.summary.operation.value if snapshot.summary else "?")
    curator = summary.get(CURATOR_KEY)
    when = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC).isoformat(
        timespec="seconds"
    )
    by = f"{stage} by {curator}" if curator else stage
    return f"{by} at {when}"


def _moved(table: Table, name: str, branch: str, base: int | None, now: int | None) -> str:
    return (
        f"refused to publish {name}@{branch}: main has moved since the branch was cut "
        f"(it was at snapshot {base}, it is now at {now}, committed by {_who(table, now)}); "
        f"cut a new branch from main and redo the edits"
    )


def publish(
    warehouse: Warehouse, name: str, branch: str, *, curator: str | None = None
) -> PublishResult:
    """Fast-forward ``main`` of ``name`` to the head of ``branch`` and remove the branch.

    Raises:
        PublishRefusedError: a check fails on the branch head, or ``main`` moved since the
            branch was cut (the message says from which snapshot to which, and who moved it).
    """
    del curator  # the edits carry their curators; the ref update has no summary of its own
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    base_text = table.metadata.properties.get(_property(branch, "base"))
    if base_text is None:
        raise CurationError(f"{name}@{branch} was not cut by `posttrain branch create`")
    base = int(base_text)
    if _main_id(table) != base:
        raise PublishRefusedError(_moved(table, name, branch, base, _main_id(table)))
    outcomes = branch_checks(warehouse, name, head)
    failed = [(check, outcome) for check, outcome in outcomes if not outcome.passed]
    if failed:
        reasons = "; ".join(f"{check}: {outcome.description}" for check, outcome in failed)
        raise PublishRefusedError(f"refused to publish {name}@{branch}: checks failed: {reasons}")
    updates = (
        SetSnapshotRefUpdate(  # type: ignore[call-arg]
            ref_name=MAIN_BRANCH, type=SnapshotRefType.BRANCH, snapshot_id=head
        ),
        RemoveSnapshotRefUpdate(  # type: ignore[call-arg]
            ref_name=branch
        ),
        RemovePropertiesUpdate(
            removals=[_property(branch, k) for k in ("base", "curator", "created-at")]
        ),
    )
    requirements = (
        AssertRefSnapshotId(  # type: ignore[call-arg]
            ref=MAIN_BRANCH, snapshot_id=base
        ),
        AssertRefSnapshotId(  # type: ignore[call-arg]
            ref=branch, snapshot_id=head
        ),
    )
    try:
        _retrying(lambda: table._do_commit(updates, requirements), f"publish {name}@{branch}")
    except CommitFailedException:
        now = warehouse.table(name)
        if branch not in now.metadata.refs:
            raise PublishRefusedError(
                f"refused to publish {name}@{branch}: another process published or removed "
                "the branch first"
            ) from None
        if _branch_head(now, name, branch) != head:
            raise PublishRefusedError(
                f"refused to publish {name}@{branch}: the branch moved from {head} to "
                f"{_branch_head(now, name, branch)} during the audit; publish again"
            ) from None
        raise PublishRefusedError(_moved(now, name, branch, base, _main_id(now))) from None
    return PublishResult(name, branch, base, head, outcomes)


def drop_branch(warehouse: Warehouse, name: str, branch: str) -> None:
    """Remove ``branch`` of ``name`` without publishing it."""
    table = warehouse.table(name)
    head = _branch_head(table, name, branch)
    updates = (
        RemoveSnapshotRefUpdate(  # type: ignore[call-arg]
            ref_name=branch
        ),
        RemovePropertiesUpdate(
            removals=[_property(branch, k) for k in ("base", "curator", "created-at")]
        ),
    )
    requirements = (
        AssertRefSnapshotId(  # type: ignore[call-arg]
            ref=branch, snapshot_id=head
        ),
    )
    try:
        _retrying(lambda: table._do_commit(updates, requirements), f"remove {name}@{branch}")
    except CommitFailedException:
        raise CurationError(f"{name}@{branch} changed meanwhile; try again") from None


__all__ = [
    "BranchInfo",
    "CurationError",
    "EditResult",
    "PublishRefusedError",
    "PublishResult",
    "branch_checks",
    "branch_snapshot",
    "create_branch",
    "default_curator",
    "drop_branch",
    "drop_rows",
    "fix_record",
    "list_branches",
    "parse_patch",
    "publish",
    "relabel",
]
