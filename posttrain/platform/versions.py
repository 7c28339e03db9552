"""Corpus versions: every table of a corpus tagged at once, and recorded in one row.

``create_version`` pins the current snapshot of each table of the corpus, tags each table
at its pinned snapshot (an Iceberg tag: no data is copied) and then appends one row to
``lineage.corpus_versions``. Readers resolve versions only through that row, which is
written last with a compare-and-swap keyed by corpus and version: a version whose tagging
failed halfway is invisible, and of two processes creating the same version exactly one
wins.

``TABLE@REF`` names one snapshot of a table: REF is a version (``v3`` or ``sft/v3``), a
snapshot id, or a tag or branch of the table.

Example:
    >>> v3 = create_version(warehouse, "sft", "v3", created_by="ana")  # doctest: +SKIP
    >>> resolve(warehouse, "gold.sft@v3")  # doctest: +SKIP
    ('gold.sft', 4915...)
"""

from __future__ import annotations

import getpass
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.table import Table

from posttrain.platform.corpora import corpora_of
from posttrain.platform.corpora import corpus as get_corpus
from posttrain.platform.errors import (
    CommitConflictError,
    ConfigError,
    RefNotFoundError,
    VersionError,
    VersionExistsError,
)
from posttrain.platform.lineage import CONFIG_HASH_KEY, Lineage, code_version
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import ANY_SNAPSHOT, Warehouse, _current_id

VERSIONS_TABLE = TableName.LINEAGE_CORPUS_VERSIONS
CREATE = "create"
RECUT = "recut"  # a version's tables moved to rewritten snapshots (erasure)
ROLLBACK = "rollback"
MAIN = "main"
_VERSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class CorpusVersion:
    """One row of ``lineage.corpus_versions``: a version cut, recut, or a rollback."""

    event: str
    corpus: str | None
    version: str | None
    snapshots: dict[str, int | None]
    event_key: str = ""
    previous_snapshots: dict[str, int | None] = field(default_factory=dict)
    config_hashes: dict[str, str] = field(default_factory=dict)
    code_version: str = ""
    outcome_cutoff: datetime | None = None
    outcomes_included: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None

    @property
    def ref(self) -> str:
        """``corpus/version``: the name of the Iceberg tag on each table of the version."""
        return tag_name(self.corpus or "", self.version or "")

    def row(self) -> dict[str, object]:
        return {
            "event_key": self.event_key,
            "event": self.event,
            "corpus": self.corpus,
            "version": self.version,
            "snapshots": list(self.snapshots.items()),
            "previous_snapshots": list(self.previous_snapshots.items()),
            "config_hashes": list(self.config_hashes.items()),
            "code_version": self.code_version,
            "outcome_cutoff": self.outcome_cutoff,
            "outcomes_included": self.outcomes_included,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> CorpusVersion:
        def as_dict(value: object) -> dict[str, object]:
            return dict(value) if isinstance(value, list) else {}

        return cls(
            event=str(row["event"]),
            corpus=_opt_str(row.get("corpus")),
            version=_opt_str(row.get("version")),
            snapshots=as_dict(row.get("snapshots")),  # type: ignore[arg-type]
            event_key=str(row["event_key"]),
            previous_snapshots=as_dict(row.get("previous_snapshots")),  # type: ignore[arg-type]
            config_hashes=as_dict(row.get("config_hashes")),  # type: ignore[arg-type]
            code_version=str(row.get("code_version") or ""),
            outcome_cutoff=row.get("outcome_cutoff"),  # type: ignore[arg-type]
            outcomes_included=_opt_str(row.get("outcomes_included")),
            created_by=_opt_str(row.get("created_by")),
            created_at=row.get("created_at"),  # type: ignore[arg-type]
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def tag_name(corpus: str, version: str) -> str:
    """The Iceberg tag a version puts on each of its tables, e.g. ``sft/v3``."""
    return f"{corpus}/{version}"


def _create_key(corpus: str, version: str) -> str:
    return f"{CREATE} {corpus}@{version}"


def _key_is(key: str) -> EqualTo:
    return EqualTo(term=Reference("event_key"), value=literal(key))


def _check_name(version: str) -> None:
    if not _VERSION_NAME.fullmatch(version) or version == MAIN:
        raise ConfigError(
            f"bad version name {version!r}: expected a letter then letters, digits, '.', "
            "'_' or '-' (at most 64), and not 'main'"
        )


# -- reading the version rows ----------------------------------------------------------


def events(warehouse: Warehouse, *, snapshot_id: int | None = None) -> list[CorpusVersion]:
    """Every row of ``lineage.corpus_versions`` (at ``snapshot_id``), oldest first."""
    if not warehouse.exists(VERSIONS_TABLE):
        return []
    pinned = snapshot_id if snapshot_id is not None else warehouse.snapshot_id(VERSIONS_TABLE)
    if pinned is None:
        return []
    rows = warehouse.read(VERSIONS_TABLE, snapshot_id=pinned).to_pylist()
    found = [CorpusVersion.from_row(row) for row in rows]
    return sorted(found, key=lambda e: e.created_at or datetime.min.replace(tzinfo=UTC))


def versions(warehouse: Warehouse, corpus: str | None = None) -> list[CorpusVersion]:
    """The versions of ``corpus`` (all corpora by default), oldest first, each with the
    snapshots it pins now (a recut after erasure replaces the created ones)."""
    current: dict[tuple[str, str], CorpusVersion] = {}
    for event in events(warehouse):
        if event.event not in (CREATE, RECUT) or event.corpus is None or event.version is None:
            continue
        if corpus is not None and event.corpus != corpus:
            continue
        key = (event.corpus, event.version)
        if event.event == CREATE:
            current.setdefault(key, event)
        elif key in current:
            created = current[key]
            current[key] = CorpusVersion(
                **{**created.__dict__, "snapshots": {**created.snapshots, **event.snapshots}}
            )
    return list(current.values())


def get_version(warehouse: Warehouse, corpus: str, version: str) -> CorpusVersion:
    """The version ``version`` of ``corpus``, or :class:`RefNotFoundError` naming the known."""
    get_corpus(corpus)
    known = versions(warehouse, corpus)
    for candidate in known:
        if candidate.version == version:
            return candidate
    names = ", ".join(v.version or "" for v in known) or "none yet"
    raise RefNotFoundError(f"corpus {corpus!r} has no version {version!r}; versions: {names}")


# -- creating ---------------------------------------------------------------------------


def _load(warehouse: Warehouse, table: str) -> Table | None:
    try:
        return warehouse.catalog.load_table(table)
    except (NoSuchTableError, NoSuchNamespaceError):
        return None


def _tag(
    warehouse: Warehouse, table: str, tag: str, snapshot_id: int, loaded: Table | None = None
) -> None:
    """Point ``tag`` of ``table`` at ``snapshot_id``, retrying if another writer commits
    to the table meanwhile (a tag never moves the table's ``main``)."""
    for attempt in range(warehouse.retry.attempts):
        current = loaded if loaded is not None else warehouse.table(table)
        loaded = None
        ref = current.metadata.refs.get(tag)
        if ref is not None and ref.snapshot_id == snapshot_id:
            return
        if current.metadata.snapshot_by_id(snapshot_id) is None:
            raise VersionError(f"{table} has no snapshot {snapshot_id} to tag as {tag}")
        try:
            current.manage_snapshots().create_tag(snapshot_id, tag).commit()
            return
        except CommitFailedException:
            time.sleep(warehouse.retry.wait(attempt))
    raise CommitConflictError(table, f"could not tag it as {tag}: other writers kept winning")


def _config_hash(table: Table | None, snapshot_id: int | None) -> str:
    snapshot = table.metadata.snapshot_by_id(snapshot_id) if table and snapshot_id else None
    if snapshot is None or snapshot.summary is None:
        return ""
    return str(snapshot.summary.additional_properties.get(CONFIG_HASH_KEY, ""))


def _write_row(warehouse: Warehouse, event: CorpusVersion) -> bool:
    """Append ``event`` unless a row with its key exists; whether it was added."""
    data = pa.Table.from_pylist([event.row()], schema=TABLES[VERSIONS_TABLE].schema)
    # Only a row with the same key can collide: the scan reads no other version's file.
    scope = _key_is(event.event_key)
    result = warehouse.append_new(
        VERSIONS_TABLE, data, "event_key", Lineage(f"version-{event.event}"), scope=scope
    )
    return result.rows_added == 1


def create_version(
    warehouse: Warehouse,
    corpus: str,
    name: str,
    *,
    outcome_cutoff: datetime | None = None,
    outcomes_included: str | None = None,
    created_by: str | None = None,
    pinned: Mapping[str, int | None] | None = None,
) -> CorpusVersion:
    """Cut version ``name`` of ``corpus``: tag each table, then record the version row.

    ``pinned`` gives the snapshot to version for some tables (e.g. the ones a run read);
    the others are pinned at their current snapshot when the call starts. Nothing is
    copied: each table gets the tag ``corpus/name`` at its pinned snapshot.

    Raises:
        VersionExistsError: the corpus has a version of that name (also when another
            process created it while this call was tagging; its tags are then kept).
        ConfigError: unknown corpus or a bad version name.
    """
    spec = get_corpus(corpus)
    _check_name(name)
    _refuse_existing(warehouse, corpus, name)
    loaded = {str(table): _load(warehouse, table) for table in spec.tables}
    snapshots: dict[str, int | None] = {
        table: _current_id(t) if t is not None else None for table, t in loaded.items()
    }
    for table, snapshot_id in (pinned or {}).items():
        if table not in snapshots:
            raise ConfigError(f"{table} is not a table of corpus {corpus!r}: {spec.tables}")
        snapshots[table] = snapshot_id
    tag = tag_name(corpus, name)
    for table, snapshot_id in snapshots.items():
        if snapshot_id is not None:
            _tag(warehouse, table, tag, snapshot_id, loaded[table])
    event = CorpusVersion(
        event=CREATE,
        corpus=corpus,
        version=name,
        snapshots=snapshots,
        event_key=_create_key(corpus, name),
        config_hashes={t: _config_hash(loaded[t], s) for t, s in snapshots.items()},
        code_version=code_version(),
        outcome_cutoff=outcome_cutoff,
        outcomes_included=outcomes_included,
        created_by=created_by or _user(),
        created_at=datetime.now(UTC),
    )
    if not _write_row(warehouse, event):
        # Another process won the race for this name while we were tagging: its row is
        # the version, so the tags must point at its snapshots, not ours.
        winner = get_version(warehouse, corpus, name)
        for table, snapshot_id in winner.snapshots.items():
            if snapshot_id is not None:
                _tag(warehouse, table, tag, snapshot_id)
        raise VersionExistsError(
            f"corpus {corpus!r} got version {name!r} from {winner.created_by} while this "
            "call was tagging; its version stands (tags point at its snapshots): pick "
            "another name"
        )
    return event


def _refuse_existing(warehouse: Warehouse, corpus: str, name: str) -> None:
    if not warehouse.exists(VERSIONS_TABLE):
        return
    # Filtered on the key: the column statistics skip every other version's file.
    rows = warehouse.read(VERSIONS_TABLE, row_filter=_key_is(_create_key(corpus, name))).to_pylist()
    if rows:
        existing = CorpusVersion.from_row(rows[0])
        raise VersionExistsError(
            f"corpus {corpus!r} already has version {name!r} (created by "
            f"{existing.created_by} at {existing.created_at:%Y-%m-%d %H:%M:%S} UTC); "
            "versions are never overwritten: pick another name"
        )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_recut(
    warehouse: Warehouse,
    corpus: str,
    version: str,
    snapshots: Mapping[str, int | None],
    *,
    created_by: str | None = None,
) -> CorpusVersion:
    """Move version tags to rewritten snapshots (erasure), recorded as a ``recut`` event.

    Readers of ``TABLE@version`` see the new snapshots once the row is written.
    """
    previous = get_version(warehouse, corpus, version)
    tag = tag_name(corpus, version)
    for table, snapshot_id in snapshots.items():
        if snapshot_id is not None:
            _tag(warehouse, table, tag, snapshot_id)
    event = CorpusVersion(
        event=RECUT,
        corpus=corpus,
        version=version,
        snapshots=dict(snapshots),
        event_key=f"{RECUT} {corpus}@{version} {uuid.uuid4().hex}",
        previous_snapshots={t: previous.snapshots.get(t) for t in snapshots},
        config_hashes={t: _config_hash(_load(warehouse, t), s) for t, s in snapshots.items()},
        code_version=code_version(),
        created_by=created_by or _user(),
        created_at=datetime.now(UTC),
    )
    _write_row(warehouse, event)
    return event


# -- resolving TABLE@REF ------------------------------------------------------------------


def split_ref(spec: str) -> tuple[str, str | None]:
    """``"gold.sft@v3"`` → ``("gold.sft", "v3")``; no ``@`` → ``(spec, None)``."""
    name, sep, ref = spec.partition("@")
    if sep and not ref:
        raise ConfigError(
            f"{spec!r}: expected TABLE@REF with a version, snapshot id, tag or branch"
        )
    return name, (ref if sep else None)


def resolve(warehouse: Warehouse, spec: str) -> tuple[str, int | None]:
    """The table and snapshot id ``TABLE@REF`` names (``None``: the table was empty).

    REF is tried as a corpus version (``v3``, or ``sft/v3`` when several corpora share
    the table), a snapshot id, then a tag or branch of the table. Without ``@REF``, the
    current snapshot of ``main``. A version tag whose row is missing (its creation failed
    halfway) is not a version: it resolves to nothing.

    Raises:
        TableNotFoundError: no such table.
        RefNotFoundError: REF names nothing of that table.
    """
    name, ref = split_ref(spec)
    table = warehouse.table(name)
    if ref is None or ref == MAIN:
        current = table.current_snapshot()
        return name, current.snapshot_id if current else None
    by_version = _version_snapshot(warehouse, name, ref)
    if by_version is not _NOTHING:
        return name, by_version  # type: ignore[return-value]
    if re.fullmatch(r"-?\d+", ref):
        if table.metadata.snapshot_by_id(int(ref)) is None:
            raise RefNotFoundError(f"{name} has no snapshot {ref}")
        return name, int(ref)
    refs = table.metadata.refs
    if ref in refs and not _is_version_tag(name, ref):
        return name, refs[ref].snapshot_id
    known = sorted({v.version or "" for v in versions(warehouse) if name in v.snapshots})
    others = sorted(r for r in refs if not _is_version_tag(name, r))
    raise RefNotFoundError(
        f"{name} has no version, snapshot, tag or branch {ref!r}; versions: "
        f"{', '.join(known) or 'none'}; tags and branches: {', '.join(others) or 'none'}"
    )


_NOTHING = object()


def _version_snapshot(warehouse: Warehouse, table: str, ref: str) -> object:
    corpus_name, _, version = ref.rpartition("/")
    matches = {
        (v.corpus, v.snapshots[table])
        for v in versions(warehouse)
        if table in v.snapshots
        and v.version == version
        and (not corpus_name or v.corpus == corpus_name)
    }
    if not matches:
        return _NOTHING
    if len({snapshot for _, snapshot in matches}) > 1:
        named = ", ".join(f"{table}@{c}/{version}" for c, _ in sorted(matches, key=str))
        raise RefNotFoundError(f"{table}@{ref} is ambiguous: say which corpus: {named}")
    return next(iter(matches))[1]


def _is_version_tag(table: str, ref: str) -> bool:
    corpus_name, sep, _ = ref.partition("/")
    return bool(sep) and corpus_name in corpora_of(table)


# -- rollback -----------------------------------------------------------------------------


def rollback(
    warehouse: Warehouse, table: str, to: str, *, created_by: str | None = None
) -> CorpusVersion:
    """Move ``main`` of ``table`` back to the snapshot ``to`` names (a version, snapshot id,
    tag or branch), and record the move as a ``rollback`` event. No data is rewritten.

    Raises:
        RefNotFoundError: ``to`` names nothing of the table.
        VersionError: ``to`` is an empty version of the table (nothing to roll back to).
    """
    name, target = resolve(warehouse, f"{table}@{to}")
    if target is None:
        raise VersionError(f"{name}@{to} is an empty table: there is no snapshot to roll back to")
    before: list[int | None] = []

    def attempt(loaded: Table) -> None:
        current = loaded.current_snapshot()
        before.append(current.snapshot_id if current else None)
        if current is None or current.snapshot_id != target:
            loaded.manage_snapshots().set_current_snapshot(snapshot_id=target).commit()

    warehouse._commit(name, attempt, ANY_SNAPSHOT)
    event = CorpusVersion(
        event=ROLLBACK,
        corpus=None,
        version=to,
        snapshots={name: target},
        event_key=f"{ROLLBACK} {name}@{to} {uuid.uuid4().hex}",
        previous_snapshots={name: before[-1]},
        code_version=code_version(),
        created_by=created_by or _user(),
        created_at=datetime.now(UTC),
    )
    _write_row(warehouse, event)
    return event
