"""The plain table of the blend tests: ``t.nums``, ids with their text."""

from __future__ import annotations

import pyarrow as pa

NUMS = "t.nums"
NUMS_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string())])
NUMS_ROWS = 90  # three appends of 30: three data files of row groups of 8 rows


def nums(start: int, count: int) -> pa.Table:
    """Rows ``start .. start + count - 1`` of ``t.nums``."""
    ids = list(range(start, start + count))
    return pa.table({"id": ids, "text": [f"n{i}" for i in ids]}, schema=NUMS_SCHEMA)
