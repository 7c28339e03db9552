"""Access to the ``messages`` column shared by the silver stages, with one clear error."""

from __future__ import annotations

import pyarrow as pa

from posttrain.platform.errors import InputFormatError
from posttrain.platform.schemas import MESSAGES_TYPE

MESSAGES_COLUMN = "messages"


def as_table(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """``batch`` as a table (a record batch is wrapped, not copied)."""
    return batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])


def require_messages(table: pa.Table, stage: str) -> pa.ChunkedArray:
    """The ``messages`` column of ``table``.

    Raises:
        InputFormatError: the column is missing or is not ``list<struct<role, content, ...>>``.
    """
    where = f"batch given to the silver {stage!r} step"
    expectation = f"a {MESSAGES_COLUMN!r} column of type {MESSAGES_TYPE}"
    if MESSAGES_COLUMN not in table.column_names:
        raise InputFormatError(where, expectation, found=f"columns {table.column_names}")
    column = table.column(MESSAGES_COLUMN)
    if column.type != MESSAGES_TYPE:
        raise InputFormatError(where, expectation, found=f"type {column.type}")
    return column
