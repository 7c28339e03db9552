"""The silver decontamination step, and running it over a table through an executor.

:class:`DecontamStep` honours the step contract (:mod:`posttrain.platform.steps`): it maps
one Arrow batch with ``record_id`` and ``messages`` (other columns are kept as they are)
to the rows it keeps and ``silver.rejections`` rows with reason ``contaminated`` and the
evidence — benchmark, the item with most matching n-grams, their count — e.g.
``13-gram overlap with humaneval HumanEval/12 (7 matching n-grams)``, or, for a benchmark
function found under other names (code-aware matching, :mod:`.functions`), ``code match
with humaneval HumanEval/12: its function, identifiers renamed (1 matching function)``.

Example:
    >>> step = DecontamStep(index_from_warehouse(wh, config), config)  # doctest: +SKIP
    >>> result = run_decontam(conversations, step, RayExecutor())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.decontam.code import code_token_stream
from posttrain.platform.decontam.config import DecontamConfig
from posttrain.platform.decontam.index import Matches, NgramIndex
from posttrain.platform.decontam.texts import batch_segments, batch_tokens
from posttrain.platform.errors import ConfigError, InputFormatError, RecordError
from posttrain.platform.execution import DEFAULT_BATCH_ROWS, Executor
from posttrain.platform.schemas import RejectionReason
from posttrain.platform.steps import StepResult, empty_rejections, rejections_of, run_stages

RECORD_ID = "record_id"
# Columns the standalone command appends to each contaminated row.
EVIDENCE_FIELDS = [
    pa.field("benchmark", pa.string()),
    pa.field("benchmark_item_id", pa.string()),
    pa.field("matched_ngrams", pa.int32()),
    pa.field("detail", pa.string()),
]


@dataclass(frozen=True)
class Evidence:
    """Which rows of a batch are contaminated, and by what (lists aligned with ``rows``)."""

    rows: np.ndarray
    benchmark: list[str]
    item_id: list[str]
    matched_ngrams: list[int]
    detail: list[str]


@dataclass(frozen=True)
class DecontamStep:
    """Refuses records that share benchmark n-grams; picklable, so Ray ships it once.

    Attributes:
        index: n-grams of the benchmarks, built with ``config``'s n-gram settings.
        config: the thresholds and the text view.
        text_column: read each row's text from this string column instead of ``messages``.
    """

    index: NgramIndex
    config: DecontamConfig
    text_column: str | None = None
    name: str = "decontam"

    def __post_init__(self) -> None:
        built = self.index.scheme()
        if built != self.config.index_scheme():
            raise ConfigError(
                f"the n-gram index was built with {built} but the config asks for "
                f"{self.config.index_scheme()}; rebuild the index from this config"
            )

    def matches(self, table: pa.Table) -> Matches:
        """Best benchmark item and matching n-gram count for every row of ``table``."""
        where = f"batch given to the {self.name!r} step"
        tokens = batch_tokens(
            table, view=self.config.text_view, text_column=self.text_column, where=where
        )
        return self.index.match_tokens(tokens, table.num_rows)

    def code_matches(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the item with most of its functions found in the row's text under any
        consistent renaming (-1: none), and how many were found (all -1 and 0 when code
        matching is off)."""
        item = np.full(table.num_rows, -1, dtype=np.int64)
        found = np.zeros(table.num_rows, dtype=np.int32)
        if self.index.functions is None or table.num_rows == 0:
            return item, found
        where = f"batch given to the {self.name!r} step"
        segments, owner = batch_segments(
            table, view=self.config.text_view, text_column=self.text_column, where=where
        )
        if owner is None:
            owner = np.arange(table.num_rows, dtype=np.int64)
        # Only texts with a ``def`` can hold a function: the others are not tokenized.
        has_def = pc.fill_null(pc.match_substring(segments, "def"), False)
        keep = np.asarray(has_def.to_numpy(zero_copy_only=False), dtype=bool)
        if not keep.any():
            return item, found
        tokens = code_token_stream(segments.filter(has_def), owner[keep])
        return self.index.functions.match(tokens, table.num_rows)

    def evidence(self, table: pa.Table) -> Evidence:
        """The contaminated rows of ``table`` with their benchmark, item, count and detail.

        A row sharing word n-grams with an item is reported as such; a row that does not
        but holds a benchmark function (code-aware matching) is reported as a code match.
        """
        found = self.matches(table)
        by_words = found.matched >= self.config.min_matches
        code_item, code_found = self.code_matches(table)
        by_code = (code_found > 0) & ~by_words
        rows = np.flatnonzero(by_words | by_code)
        items = [int(found.item[r] if by_words[r] else code_item[r]) for r in rows]
        counts = [int(found.matched[r] if by_words[r] else code_found[r]) for r in rows]
        benchmarks = [self.index.benchmark(k) for k in items]
        item_ids = [self.index.item_id(k) for k in items]
        details = [
            f"{self.config.ngram}-gram overlap with {benchmark} {item_id} "
            f"({count} matching n-gram{'s' if count != 1 else ''})"
            if by_words[row]
            else f"code match with {benchmark} {item_id}: its function, identifiers renamed "
            f"({count} matching function{'s' if count != 1 else ''})"
            for row, benchmark, item_id, count in zip(
                rows, benchmarks, item_ids, counts, strict=True
            )
        ]
        return Evidence(rows, benchmarks, item_ids, counts, details)

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        if RECORD_ID not in table.column_names:
            raise InputFormatError(
                f"batch given to the {self.name!r} step",
                f"a {RECORD_ID!r} column",
                found=f"columns {table.column_names}",
            )
        found = self.evidence(table)
        if len(found.rows) == 0:
            return StepResult(kept=table, rejected=empty_rejections())
        keep = np.ones(table.num_rows, dtype=bool)
        keep[found.rows] = False
        refused = [
            (int(row), RecordError(RejectionReason.CONTAMINATED.value, detail))
            for row, detail in zip(found.rows, found.detail, strict=True)
        ]
        rejected = rejections_of(
            table,
            refused,
            benchmark=found.benchmark,
            benchmark_item_id=found.item_id,
            matched_ngrams=found.matched_ngrams,
        )
        return StepResult(kept=table.filter(pa.array(keep)), rejected=rejected)

    def contaminated_rows(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """The contaminated rows of ``batch`` as they are, with :data:`EVIDENCE_FIELDS` appended."""
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        found = self.evidence(table)
        rows = table.take(pa.array(found.rows, type=pa.int64()))
        values = (found.benchmark, found.item_id, found.matched_ngrams, found.detail)
        for field, column in zip(EVIDENCE_FIELDS, values, strict=True):
            rows = rows.append_column(field, pa.array(column, type=field.type))
        return rows


def run_decontam(
    data: pa.Table | Iterable[pa.RecordBatch],
    step: DecontamStep,
    executor: Executor,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    total_rows: int | None = None,
) -> StepResult:
    """Apply ``step`` to every batch of ``data`` through ``executor``; results in input order.

    The output is the same whichever executor runs it and however many workers it has.
    """
    return run_stages(
        step,
        data,
        executor,
        batch_rows=batch_rows,
        total_rows=total_rows,
        kept_schema=data.schema if isinstance(data, pa.Table) else None,
    )


@dataclass(frozen=True)
class ContaminationScan:
    """The stage behind :func:`find_contaminated`: keeps only the contaminated rows, with
    :data:`EVIDENCE_FIELDS` appended, and refuses nothing."""

    step: DecontamStep

    @property
    def name(self) -> str:
        return f"{self.step.name} scan"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        return StepResult(kept=self.step.contaminated_rows(batch), rejected=empty_rejections())


def find_contaminated(
    data: pa.Table,
    step: DecontamStep,
    executor: Executor,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> pa.Table:
    """The contaminated rows of ``data`` with evidence (:meth:`DecontamStep.contaminated_rows`).

    Unguarded: this scan has no rejection table to put a failing row in, so an error is
    raised rather than a row silently left out.
    """
    return run_stages(
        ContaminationScan(step),
        data,
        executor,
        batch_rows=batch_rows,
        kept_schema=step.contaminated_rows(data.slice(0, 0)).schema,
        guard=False,
    ).kept
