"""Append outcomes (rewards, preferences, test results, feedback, text) to ``bronze.outcomes``.

An outcome row names the ``record_id`` it is about, its ``kind`` (one of
:data:`~posttrain.platform.schemas.OUTCOME_KINDS`), and a numeric ``value``, a ``text`` or
both; a pairwise preference (kind ``preference``) names ``other_record_id``, the record
``record_id`` was preferred over (``value``, if any, is the margin), and the preference
build turns it into a pair; ``source`` (who sent it), ``event_id`` (the sender's own id)
and ``arrived_at`` (ISO 8601 with a time zone; default: now) are optional.

Identity: ``outcome_id`` is the first 32 hex digits of the SHA-256 of ``record_id``,
``kind``, ``value``, ``text``, ``source``, ``event_id`` (and ``other_record_id`` when
set): the same signal sent twice (a retry, a re-ingested file, two processes at once) is
one row; ``arrived_at`` is not part of it, so a retry keeps the first arrival. Appends go
through :meth:`~posttrain.platform.warehouse.Warehouse.append_new`, exactly once under races.

Bad input follows the rules of record ingest: a file that is not what it claims (unknown
extension, not Parquet, not UTF-8, truncated) fails before anything is written; a line
that is not a valid outcome becomes a rejection in the report naming file, line and what
was wrong, and the good lines beside it land.

Example:
    >>> record_outcomes(wh, [{"record_id": rid, "kind": "reward", "value": 1.0}])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.readers import check_readable, file_type, iter_raw_batches
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import BRONZE_OUTCOMES, OUTCOME_KINDS, TableName
from posttrain.platform.warehouse import Warehouse

OUTCOMES_TABLE = TableName.BRONZE_OUTCOMES
_FIELDS = {
    "record_id",
    "kind",
    "value",
    "text",
    "source",
    "event_id",
    "arrived_at",
    "other_record_id",
}


class OutcomeError(ValueError):
    """One outcome row is not valid; the message says what was expected."""


@dataclass(frozen=True)
class OutcomeRejection:
    """An input line or row that is not a valid outcome, and why."""

    where: str  # "file, line N" or "row N"
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(frozen=True)
class OutcomesReport:
    """What one outcomes ingest did."""

    batch_id: str
    rows_read: int
    rows_added: int
    rows_already_present: int
    snapshot_id: int | None
    rejections: list[OutcomeRejection] = field(default_factory=list)


def outcome_id(
    record_id: str,
    kind: str,
    value: float | None,
    text: str | None,
    source: str | None,
    event_id: str | None,
    other_record_id: str | None = None,
) -> str:
    """The content hash identifying one outcome (see the module docstring)."""
    parts = [record_id, kind, "" if value is None else repr(float(value)), text, source, event_id]
    if other_record_id is not None:  # left out otherwise: older outcome ids stay the same
        parts.append(other_record_id)
    encoded = "\0".join("\x01" if part is None else str(part) for part in parts)
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def _text(row: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = row.get(name)
    if value is None:
        if required:
            raise OutcomeError(f"a non-empty string {name!r}, found none")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise OutcomeError(f"{name!r} as a non-empty string, found {value!r}")
    return value


def _value(row: Mapping[str, Any]) -> float | None:
    value = row.get("value")
    if value is None:
        return None
    if isinstance(value, bool):  # a passed/failed test
        return 1.0 if value else 0.0
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise OutcomeError(f"'value' as a finite number, found {value!r}")
    return float(value)


def _arrived_at(row: Mapping[str, Any], now: datetime) -> datetime:
    value = row.get("arrived_at")
    if value is None:
        return now
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise OutcomeError(f"'arrived_at' in ISO 8601, found {value!r}") from None
    else:
        raise OutcomeError(f"'arrived_at' in ISO 8601, found {value!r}")
    if stamp.tzinfo is None:
        raise OutcomeError(f"'arrived_at' with a time zone (e.g. +00:00), found {value!r}")
    return stamp.astimezone(UTC)


def parse_outcome(row: Any, now: datetime) -> dict[str, Any]:
    """One validated outcome row (``BRONZE_OUTCOMES`` columns without batch and file).

    Raises:
        OutcomeError: the row is not an object, lacks ``record_id``/``kind``, has an unknown
            kind or key, or neither a value nor a text.
    """
    if not isinstance(row, Mapping):
        raise OutcomeError(f"a JSON object, found {type(row).__name__}")
    unknown = sorted(set(row) - _FIELDS - {"outcome_id", "batch_id", "source_uri", "row_index"})
    if unknown:
        raise OutcomeError(f"only the keys {sorted(_FIELDS)}, found {unknown}")
    record_id = _text(row, "record_id", required=True)
    kind = _text(row, "kind", required=True)
    if kind not in OUTCOME_KINDS:
        raise OutcomeError(f"'kind' one of {list(OUTCOME_KINDS)}, found {kind!r}")
    value, text = _value(row), _text(row, "text")
    other = _text(row, "other_record_id")
    if other is not None and kind != "preference":
        raise OutcomeError(f"'other_record_id' only on kind 'preference', found kind {kind!r}")
    if value is None and text is None and other is None:
        raise OutcomeError("a 'value' or a 'text', found neither")
    source, event_id = _text(row, "source"), _text(row, "event_id")
    assert record_id is not None and kind is not None
    return {
        "outcome_id": outcome_id(record_id, kind, value, text, source, event_id, other),
        "other_record_id": other,
        "record_id": record_id,
        "kind": kind,
        "value": value,
        "text": text,
        "source": source,
        "event_id": event_id,
        "arrived_at": _arrived_at(row, now),
    }


def _batch_id(outcome_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(outcome_ids)).encode()).hexdigest()[:16]


def _append(
    warehouse: Warehouse,
    rows: list[dict[str, Any]],
    *,
    rows_read: int,
    rejections: list[OutcomeRejection],
    batch_id: str | None,
) -> OutcomesReport:
    batch_id = batch_id or _batch_id(row["outcome_id"] for row in rows)
    for row in rows:
        row["batch_id"] = batch_id
    data = pa.Table.from_pylist(rows, schema=BRONZE_OUTCOMES)
    if data.num_rows:  # the same outcome twice in one call: the first one
        first: list[int] = []
        seen: set[str] = set()
        for index, oid in enumerate(data["outcome_id"].to_pylist()):
            if oid not in seen:
                seen.add(oid)
                first.append(index)
        data = data.take(first)
    warehouse.ensure_table(OUTCOMES_TABLE)
    result = warehouse.append_new(
        OUTCOMES_TABLE, data, "outcome_id", Lineage("outcomes-ingest", properties={})
    )
    return OutcomesReport(
        batch_id,
        rows_read,
        result.rows_added,
        rows_read - len(rejections) - result.rows_added,
        result.snapshot_id,
        rejections,
    )


def record_outcomes(
    warehouse: Warehouse,
    rows: Sequence[Mapping[str, Any]],
    *,
    batch_id: str | None = None,
    strict: bool = True,
) -> OutcomesReport:
    """Append outcomes given as dicts (the Python API); exactly once per ``outcome_id``.

    Args:
        warehouse: where ``bronze.outcomes`` lives (created on first use).
        rows: ``record_id``, ``kind`` and a ``value`` or ``text``; optionally ``source``,
            ``event_id``, ``arrived_at`` (a tz-aware datetime or ISO 8601 string).
        batch_id: stored on every new row; by default a hash of the outcome ids.
        strict: raise on the first invalid row before writing anything (default); with
            ``False`` invalid rows are reported as rejections and the valid ones land.

    Raises:
        InputFormatError: ``strict`` and a row is invalid (names the row, 1-based).
        CommitConflictError: other writers kept winning; nothing was written.
    """
    now = datetime.now(UTC)
    good: list[dict[str, Any]] = []
    rejections: list[OutcomeRejection] = []
    for number, row in enumerate(rows, start=1):
        try:
            good.append(parse_outcome(row, now))
        except OutcomeError as exc:
            if strict:
                raise InputFormatError(
                    "record_outcomes(rows)", str(exc), line=number, unit="row"
                ) from None
            rejections.append(OutcomeRejection(f"row {number}", f"expected {exc}"))
    return _append(warehouse, good, rows_read=len(rows), rejections=rejections, batch_id=batch_id)


def read_outcome_file(path: str | Path) -> tuple[list[dict[str, Any]], list[OutcomeRejection], int]:
    """The valid outcomes of a JSONL/JSON/Parquet file, its rejected lines, and rows read.

    Raises:
        InputFormatError: the file as a whole is not what it claims, before anything is read.
    """
    path = Path(path)
    ftype = file_type(path)
    check_readable(path)
    now = datetime.now(UTC)
    unit = "line" if ftype.kind.is_text else "row"
    good: list[dict[str, Any]] = []
    rejections: list[OutcomeRejection] = []
    read = 0
    uri = path.resolve().as_uri()
    for batch in iter_raw_batches(path):
        for index, payload in zip(
            batch["row_index"].to_pylist(), batch["payload"].to_pylist(), strict=True
        ):
            read += 1
            where = f"{path}, {unit} {index}"
            if payload is None:
                rejections.append(OutcomeRejection(where, "expected UTF-8 text"))
                continue
            try:
                parsed = parse_outcome(json.loads(payload), now)
            except json.JSONDecodeError as exc:
                rejections.append(OutcomeRejection(where, f"expected JSON: {exc.msg}"))
                continue
            except OutcomeError as exc:
                rejections.append(OutcomeRejection(where, f"expected {exc}"))
                continue
            good.append(parsed | {"source_uri": uri, "row_index": index})
    return good, rejections, read


def ingest_outcome_file(
    warehouse: Warehouse, path: str | Path, *, batch_id: str | None = None
) -> OutcomesReport:
    """Append the outcomes of one JSONL/JSON/Parquet file to ``bronze.outcomes``, once each.

    The whole file is read and checked before the write; bad lines are rejections in the
    report (file and line), good lines land.
    """
    good, rejections, read = read_outcome_file(path)
    return _append(warehouse, good, rows_read=read, rejections=rejections, batch_id=batch_id)
