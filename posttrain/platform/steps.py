"""The one contract every stage honours, and the one driver that runs stages.

A **stage** is a small, picklable object with a ``name``, called on one Arrow batch. It
returns a :class:`StepResult`: the rows it keeps (or produces), rejection rows in the
``silver.rejections`` schema for the rows it refuses, and counters (``dict[str, int]``).
Nothing is dropped silently: every input row is kept or rejected.

The **driver**, :func:`run_stages`, runs a stage or a chain of stages over batches on any
:class:`~posttrain.platform.execution.Executor` (in-process or Ray; results in input
order), concatenates what each batch kept and refused, and sums the counters. Executors
only shard and chain, as in datatrove; the stage never knows where it runs.

The driver guards every record, on the worker: when a stage raises on a batch, it re-runs
the stage on halves of the batch until the rows that make it raise are isolated; each
becomes a rejection (reason ``stage_error``, or the reason of a :class:`RecordError` it
raised) naming the stage, the exception and the record's source file and line, and the
good rows go on. A stage that fails even on an empty batch has a bug of its own, not a bad
record: that error is raised.

Example:
    >>> class NonEmpty(RecordStep):
    ...     name = "non-empty"
    ...     def check(self, row):
    ...         return None if row["text"] else RecordError("empty", "no text")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

import pyarrow as pa

from posttrain.platform.errors import RecordError
from posttrain.platform.execution import DEFAULT_BATCH_ROWS, Executor, iter_batches
from posttrain.platform.schemas import SILVER_REJECTIONS, RejectionReason

# Input columns a rejection row copies, when the batch has them, to name where it came from.
PROVENANCE_COLUMNS = (
    "record_id",
    "source",
    "batch_id",
    "source_uri",
    "row_index",
    "pair_id",
)
EVIDENCE_COLUMNS = (
    "kept_record_id",
    "similarity",
    "benchmark",
    "benchmark_item_id",
    "matched_ngrams",
)
STAGE_ERRORS = "stage_errors"  # counter: records a stage raised on
MAX_ERROR_CHARS = 300
# Never turned into rejections: the process is being stopped. Everything else is, including
# BaseException subclasses that native extensions raise on a bad input (a Rust panic in
# ``tokenizers`` arrives as pyo3's PanicException, which is not an Exception).
_STOPPING = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(frozen=True)
class StepResult:
    """What a stage kept, what it refused (``silver.rejections`` schema) and its counters."""

    kept: pa.Table
    rejected: pa.Table
    counters: Mapping[str, int] = field(default_factory=dict)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Count of rejected rows per reason code."""
        return counts_by(self.rejected, "reason")


def counts_by(table: pa.Table, column: str) -> dict[str, int]:
    """How many rows of ``table`` hold each value of ``column``, sorted by value.

    >>> counts_by(pa.table({"reason": ["empty", "dedup", "empty"]}), "reason")
    {'dedup': 1, 'empty': 2}
    """
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(column).aggregate([(column, "count")])
    pairs = zip(grouped[column].to_pylist(), grouped[f"{column}_count"].to_pylist(), strict=True)
    return dict(sorted(pairs))


class Stage(Protocol):
    """A picklable callable from one batch to a :class:`StepResult`, with a ``name``."""

    @property
    def name(self) -> str:
        """How rejections, errors and progress name the stage."""
        ...

    def __call__(self, batch: pa.RecordBatch | pa.Table, /) -> StepResult: ...


def as_table(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """``batch`` as a table (a record batch is wrapped, not copied)."""
    return batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])


def rejection_rows(
    rejected: Sequence[tuple[Mapping[str, Any], RecordError]],
    **evidence: Sequence[Any],
) -> pa.Table:
    """Build ``silver.rejections`` rows from ``(row, error)`` pairs.

    ``row`` must hold ``record_id`` and may hold the other :data:`PROVENANCE_COLUMNS`;
    ``evidence`` supplies optional columns (``kept_record_id``, ``similarity``,
    ``benchmark``, ...) as sequences aligned with ``rejected``.
    """
    columns: dict[str, list[Any]] = {name: [] for name in SILVER_REJECTIONS.names}
    for index, (row, error) in enumerate(rejected):
        columns["reason"].append(error.reason)
        columns["detail"].append(error.detail)
        for name in PROVENANCE_COLUMNS:
            columns[name].append(row.get(name))
        for name in EVIDENCE_COLUMNS:
            values = evidence.get(name)
            columns[name].append(values[index] if values is not None else None)
    return pa.table(columns, schema=SILVER_REJECTIONS)


def rejections_of(
    table: pa.Table, refused: Sequence[tuple[int, RecordError]], **evidence: Sequence[Any]
) -> pa.Table:
    """``silver.rejections`` rows for ``(row position, error)`` pairs of ``table``."""
    if not refused:
        return empty_rejections()
    context = [name for name in PROVENANCE_COLUMNS if name in table.column_names]
    positions = pa.array([row for row, _ in refused], type=pa.int64())
    rows = table.select(context).take(positions).to_pylist()
    return rejection_rows(
        [(row, error) for row, (_, error) in zip(rows, refused, strict=True)], **evidence
    )


def empty_rejections() -> pa.Table:
    """A ``silver.rejections`` table with no rows."""
    return SILVER_REJECTIONS.empty_table()


def record_location(source_uri: str | None, row_index: int | None) -> str:
    """``"chats.jsonl, line 7"``: where a record came from, as far as it is known."""
    if source_uri is None:
        return "unknown file" if row_index is None else f"record {row_index}"
    if row_index is None:
        return source_uri
    unit = "row" if PurePosixPath(source_uri).suffix in (".parquet", ".arrow") else "line"
    return f"{source_uri}, {unit} {row_index}"


class RecordStep(ABC):
    """A step that judges one row at a time (quality filters, parsing checks).

    Subclasses implement :meth:`check`; the base class owns batching, splitting kept and
    refused rows and building rejection rows, like datatrove's ``BaseFilter``.
    """

    name: str = "step"

    @abstractmethod
    def check(self, row: Mapping[str, Any]) -> RecordError | None:
        """``None`` to keep the row, or the :class:`RecordError` that refuses it."""

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        keep_mask: list[bool] = []
        refused: list[tuple[Mapping[str, Any], RecordError]] = []
        for row in table.to_pylist():
            error = self.check(row)
            keep_mask.append(error is None)
            if error is not None:
                refused.append((row, error))
        kept = table.filter(pa.array(keep_mask, type=pa.bool_())) if refused else table
        return StepResult(kept=kept, rejected=rejection_rows(refused))


# -- the per-record guard -----------------------------------------------------------------


def _stage_error(stage: Stage, row: Mapping[str, Any], error: BaseException) -> RecordError:
    if isinstance(error, RecordError):
        return error
    message = " ".join(str(error).split())
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + "…"
    where = record_location(row.get("source_uri"), row.get("row_index"))
    return RecordError(
        RejectionReason.STAGE_ERROR,
        f"the {stage.name!r} stage raised {type(error).__name__}: {message} ({where})",
    )


def _merge(parts: Sequence[StepResult], empty: StepResult) -> StepResult:
    kept = [part.kept for part in parts if part.kept.num_rows] or [empty.kept]
    counters: Counter[str] = Counter()
    for part in parts:
        counters.update(part.counters)
    return StepResult(
        kept=pa.concat_tables(kept, promote_options="permissive") if len(kept) > 1 else kept[0],
        rejected=pa.concat_tables([part.rejected for part in parts]),
        counters=dict(counters),
    )


def _isolate(stage: Stage, table: pa.Table, error: BaseException, empty: StepResult) -> StepResult:
    """``stage`` on ``table``, which made it raise ``error``: bisect down to the bad rows."""
    if table.num_rows == 1:
        context = [name for name in PROVENANCE_COLUMNS if name in table.column_names]
        row = table.select(context).to_pylist()[0]
        return StepResult(
            kept=empty.kept,
            rejected=rejection_rows([(row, _stage_error(stage, row, error))]),
            counters={} if isinstance(error, RecordError) else {STAGE_ERRORS: 1},
        )
    half = table.num_rows // 2
    parts = []
    for part in (table.slice(0, half), table.slice(half)):
        try:
            parts.append(stage(part))
        except Exception as part_error:
            parts.append(_isolate(stage, part, part_error, empty))
    return _merge(parts, empty)


def guarded(stage: Stage, batch: pa.RecordBatch | pa.Table) -> StepResult:
    """``stage(batch)``; rows that make it raise become rejections instead of an error.

    Raises:
        Exception: what ``stage`` raised, when it raises on an empty batch too (then the
            fault is the stage's, not a record's). ``KeyboardInterrupt``, ``SystemExit``
            and ``GeneratorExit`` are never caught.
    """
    table = as_table(batch)
    try:
        return stage(table)
    except Exception as error:
        if table.num_rows == 0:
            raise
        try:
            empty = stage(table.slice(0, 0))
        except Exception:
            raise error from None
        return _isolate(stage, table, error, empty)


@dataclass(frozen=True)
class Chain:
    """Stages applied in order to each batch, each one guarded; itself a stage.

    A row refused by one stage never reaches the next, so each rejection has one reason:
    the first rule it broke.
    """

    stages: tuple[Stage, ...]
    guard: bool = True

    @property
    def name(self) -> str:
        return " → ".join(stage.name for stage in self.stages)

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        refused: list[pa.Table] = [empty_rejections()]
        counters: Counter[str] = Counter()
        for stage in self.stages:
            result = guarded(stage, table) if self.guard else stage(table)
            refused.append(result.rejected)
            counters.update(result.counters)
            table = result.kept
        return StepResult(kept=table, rejected=pa.concat_tables(refused), counters=dict(counters))


def _concat(tables: list[pa.Table], empty: pa.Table) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive") if tables else empty


def run_stages(
    stages: Stage | Sequence[Stage],
    data: pa.Table | Iterable[pa.RecordBatch],
    executor: Executor,
    *,
    label: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    total_rows: int | None = None,
    kept_schema: pa.Schema | None = None,
    guard: bool = True,
) -> StepResult:
    """Run a stage (or a chain of stages) over ``data`` through ``executor``.

    Args:
        stages: one stage, or several applied in order to each batch.
        data: a table (split into ``batch_rows`` batches) or a stream of record batches.
        executor: in-process or Ray; the result is the same, in input order.
        label: what progress reports call the work (the stage names by default).
        batch_rows: rows per batch when ``data`` is a table (no effect on the output).
        total_rows: expected input rows, for progress (a table's own count by default).
        kept_schema: the schema of ``kept`` when there is no input at all.
        guard: isolate rows that make a stage raise as rejections (see :func:`guarded`).

    Returns:
        Every batch's kept rows and rejections concatenated in input order, and the sum of
        their counters.
    """
    if isinstance(stages, Chain):
        chain = Chain(stages.stages, guard=guard)
    else:
        chain = Chain(tuple(stages) if isinstance(stages, Sequence) else (stages,), guard=guard)
    if isinstance(data, pa.Table):
        total_rows = data.num_rows if total_rows is None else total_rows
        batches: Iterable[pa.RecordBatch] = iter_batches(data, batch_rows)
    else:
        batches = data
    kept: list[pa.Table] = []
    rejected: list[pa.Table] = []
    counters: Counter[str] = Counter()
    for result in executor.map_batches(
        chain, batches, stage=label or chain.name, total_rows=total_rows
    ):
        kept.append(result.kept)
        rejected.append(result.rejected)
        counters.update(result.counters)
    empty_kept = kept_schema.empty_table() if kept_schema is not None else pa.table({})
    return StepResult(
        kept=_concat(kept, empty_kept),
        rejected=_concat(rejected, empty_rejections()),
        counters=dict(counters),
    )
