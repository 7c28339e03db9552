"""Corpus version create time at a small and a 100x larger table size.

Builds the tables of the ``sft`` corpus (``silver.conversations``, ``silver.rejections``,
``gold.sft``, ``gold.sft_packed``) with ``--rows`` rows each (pyarrow, one append per
table) in a temporary warehouse per size, then times ``create_version`` (tag every table,
then write the version row) ``--repeats`` times and prints the median per table and the
large/small ratio. Versions copy no data, so the time should be flat in table size.
Goal: under 100 ms per table.

    .venv/bin/python bench/versions.py [--rows 10000 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from posttrain.platform.corpora import CORPORA
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.versions import create_version
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

GOAL_MS_PER_TABLE = 100.0


def _table(name: str, rows: int) -> pa.Table:
    schema = TABLES[name].schema
    ids = pa.array([f"r{i:09d}" for i in range(rows)], pa.string())
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if field.name in ("record_id",):
            columns[field.name] = ids
        elif field.name == "pack_id":
            columns[field.name] = pa.array(range(rows), pa.int64())
        elif field.name in ("source", "license", "reason"):
            columns[field.name] = pa.array(["web", "MIT", "empty"][i % 3] for i in range(rows))
        else:
            columns[field.name] = pa.nulls(rows, field.type)
    return pa.Table.from_pydict(columns, schema=schema)


def measure(rows: int, repeats: int) -> float:
    """Median ms per table of ``create_version`` on tables of ``rows`` rows."""
    tables = CORPORA["sft"].tables
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(WarehouseSettings.local(Path(tmp)))
        for name in tables:
            warehouse.append(name, _table(name, rows), Lineage("bench"))
        create_version(warehouse, "sft", "warmup")  # creates lineage.corpus_versions
        times = []
        for n in range(repeats):
            start = time.perf_counter()
            create_version(warehouse, "sft", f"v{n}")
            times.append(time.perf_counter() - start)
        assert warehouse.info(TableName.GOLD_SFT).rows == rows
    return statistics.median(times) * 1000 / len(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    small, large = (measure(rows, args.repeats) for rows in args.rows)
    tables = len(CORPORA["sft"].tables)
    print(f"version create, {tables} tables of {args.rows[0]:,} rows: {small:.1f} ms per table")
    print(f"version create, {tables} tables of {args.rows[1]:,} rows: {large:.1f} ms per table")
    verdict = "ok" if max(small, large) < GOAL_MS_PER_TABLE else "over"
    print(
        f"ratio large/small: {large / small:.2f} (flat = 1); goal < {GOAL_MS_PER_TABLE:.0f} ms "
        f"per table: {verdict}"
    )


if __name__ == "__main__":
    main()
