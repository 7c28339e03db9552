"""Flags and comments on rows, made on a review branch (``lineage.row_notes``).

A flag or comment does not change the row, so it is not an edit of the table: it is a row
of ``lineage.row_notes`` naming the table, the review branch, the row's key and the
curator. The viewer cuts the review branch of the table
(:func:`posttrain.platform.curation.create_branch`) before the first note, so a flag lives
on the same branch as the fixes and drops that may follow, and shows a note only where it
was made: ``TABLE@review-x`` shows it, ``main`` does not until the branch is published
(:func:`publish_notes`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import And, EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.curation import (
    CURATOR_KEY,
    CurationError,
    create_branch,
    list_branches,
)
from posttrain.platform.errors import ConfigError
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse

NOTE_KINDS = ("flag", "comment")
MAX_NOTE_CHARS = 4000


def ensure_review_branch(warehouse: Warehouse, table: str, branch: str, curator: str) -> None:
    """Cut ``branch`` of ``table`` from ``main`` unless it exists."""
    if branch == "main":
        raise CurationError("edits go to a review branch, never to main: name a branch")
    if any(info.name == branch for info in list_branches(warehouse, table)):
        return
    try:
        create_branch(warehouse, table, branch, curator=curator)
    except CurationError as exc:
        if "already has a ref" not in str(exc):
            raise


def add_note(
    warehouse: Warehouse, table: str, branch: str, row_key: str, kind: str, text: str, curator: str
) -> str:
    """Record a flag or comment on ``row_key`` of ``table`` on ``branch``; its id."""
    if kind not in NOTE_KINDS:
        raise ConfigError(f"note kind {kind!r}: choose flag or comment")
    if len(text) > MAX_NOTE_CHARS:
        raise ConfigError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    ensure_review_branch(warehouse, table, branch, curator)
    now = datetime.now(UTC)
    note_id = hashlib.sha256(
        "\x00".join((table, branch, row_key, kind, text, curator, now.isoformat())).encode()
    ).hexdigest()[:24]
    spec = TABLES[TableName.LINEAGE_ROW_NOTES]
    warehouse.ensure_table(spec)
    row = {
        "note_id": note_id,
        "table_name": table,
        "ref": branch,
        "row_key": row_key,
        "kind": kind,
        "text": text,
        "curator": curator,
        "created_at": now,
    }
    warehouse.append(
        TableName.LINEAGE_ROW_NOTES,
        pa.Table.from_pylist([row], schema=spec.schema),
        Lineage("viewer", properties={CURATOR_KEY: curator}),
    )
    return note_id


def notes_for(warehouse: Warehouse, table: str, ref: str) -> dict[str, list[dict[str, Any]]]:
    """Row key → the notes made on ``ref`` of ``table`` (``main``: the published ones)."""
    if not warehouse.exists(TableName.LINEAGE_ROW_NOTES):
        return {}
    expression = And(
        EqualTo(term=Reference("table_name"), value=literal(table)),
        EqualTo(term=Reference("ref"), value=literal(ref)),
    )
    rows = warehouse.read(TableName.LINEAGE_ROW_NOTES, row_filter=expression).to_pylist()
    found: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["created_at"]):
        found.setdefault(str(row["row_key"]), []).append(row)
    return found


def publish_notes(warehouse: Warehouse, table: str, branch: str) -> int:
    """After ``branch`` of ``table`` is published, its notes hold on ``main``: copied there
    with ``ref = 'main'`` (the branch's rows stay as its history). The notes copied."""
    notes = [n for rows in notes_for(warehouse, table, branch).values() for n in rows]
    if not notes:
        return 0
    spec = TABLES[TableName.LINEAGE_ROW_NOTES]
    copies = [
        {
            **note,
            "note_id": hashlib.sha256(f"{note['note_id']}@main".encode()).hexdigest()[:24],
            "ref": "main",
        }
        for note in notes
    ]
    warehouse.append(
        TableName.LINEAGE_ROW_NOTES,
        pa.Table.from_pylist(copies, schema=spec.schema),
        Lineage("viewer", properties={"posttrain.notes.published-from": branch}),
    )
    return len(copies)
