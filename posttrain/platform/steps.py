"""The contract every record-level silver stage honours.

A step is a small, picklable object called on one Arrow record batch. It returns the rows
it keeps and, for the rows it refuses, rejection rows in the ``silver.rejections`` schema.
Nothing is dropped silently: ``kept.num_rows + rejected.num_rows == batch.num_rows``.

Executors (:mod:`posttrain.platform.execution`) map steps over batches in-process or on
Ray; the step never knows which.

Example:
    >>> class NonEmpty(RecordStep):
    ...     name = "non-empty"
    ...     def check(self, row):
    ...         return None if row["text"] else RecordError("empty", "no text")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from posttrain.platform.errors import RecordError
from posttrain.platform.schemas import SILVER_REJECTIONS


@dataclass(frozen=True)
class StepResult:
    """What a step kept and what it refused (``rejected`` has the ``silver.rejections`` schema)."""

    kept: pa.Table
    rejected: pa.Table

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Count of rejected rows per reason code."""
        if self.rejected.num_rows == 0:
            return {}
        counts = self.rejected.group_by("reason").aggregate([("reason", "count")])
        return dict(
            zip(counts["reason"].to_pylist(), counts["reason_count"].to_pylist(), strict=True)
        )


def rejection_rows(
    rejected: Sequence[tuple[Mapping[str, Any], RecordError]],
    **evidence: Sequence[Any],
) -> pa.Table:
    """Build ``silver.rejections`` rows from ``(row, error)`` pairs.

    ``row`` must hold ``record_id`` and may hold ``source`` and ``batch_id``; ``evidence``
    supplies optional columns (``kept_record_id``, ``similarity``, ``benchmark``, ...)
    as sequences aligned with ``rejected``.
    """
    columns: dict[str, list[Any]] = {name: [] for name in SILVER_REJECTIONS.names}
    for index, (row, error) in enumerate(rejected):
        columns["record_id"].append(row["record_id"])
        columns["reason"].append(error.reason)
        columns["detail"].append(error.detail)
        columns["source"].append(row.get("source"))
        columns["batch_id"].append(row.get("batch_id"))
        for name in (
            "kept_record_id",
            "similarity",
            "benchmark",
            "benchmark_item_id",
            "matched_ngrams",
        ):
            values = evidence.get(name)
            columns[name].append(values[index] if values is not None else None)
    return pa.table(columns, schema=SILVER_REJECTIONS)


def empty_rejections() -> pa.Table:
    """A ``silver.rejections`` table with no rows."""
    return SILVER_REJECTIONS.empty_table()


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
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        keep_mask: list[bool] = []
        refused: list[tuple[Mapping[str, Any], RecordError]] = []
        for row in table.to_pylist():
            error = self.check(row)
            keep_mask.append(error is None)
            if error is not None:
                refused.append((row, error))
        kept = table.filter(pa.array(keep_mask, type=pa.bool_())) if refused else table
        return StepResult(kept=kept, rejected=rejection_rows(refused))
