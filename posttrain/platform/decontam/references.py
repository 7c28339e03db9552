"""Where benchmark items come from: ``eval.*`` tables, files, or the shipped benchmarks.

Each source becomes a :class:`~posttrain.platform.decontam.index.ReferenceSet`; an item's
reference text is its decontamination text columns joined by newlines (for HumanEval,
prompt then canonical solution: the whole function).

Example:
    >>> index = index_from_warehouse(warehouse, DecontamConfig())  # doctest: +SKIP
    >>> sorted(index.benchmarks)  # doctest: +SKIP
    ['humaneval']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.decontam.config import DecontamConfig
from posttrain.platform.decontam.index import NgramIndex, ReferenceSet
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.evals import decontam_text_columns, get_benchmark
from posttrain.platform.evals.benchmark import EVAL_NAMESPACE, ITEM_ID
from posttrain.platform.table_files import read_table_file
from posttrain.platform.warehouse import Warehouse

# File columns accepted as the item id, in order of preference.
FILE_ID_COLUMNS = (ITEM_ID, "task_id", "id")


def _is_text(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def reference_set(
    benchmark: str,
    data: pa.Table,
    text_columns: Sequence[str],
    *,
    snapshot_id: int | None = None,
    id_column: str = ITEM_ID,
) -> ReferenceSet:
    """Items of ``data``: ids from ``id_column``, text from ``text_columns`` joined by newlines."""
    missing = [name for name in (id_column, *text_columns) if name not in data.column_names]
    if missing:
        raise ConfigError(f"benchmark {benchmark!r}: no column {missing}; has {data.column_names}")
    texts = pc.binary_join_element_wise(
        *[pc.fill_null(data.column(name).cast(pa.large_string()), "") for name in text_columns],
        pa.scalar("\n", pa.large_string()),
    )
    return ReferenceSet(
        benchmark=benchmark,
        item_ids=tuple(str(value) for value in data.column(id_column).to_pylist()),
        texts=tuple(texts.to_pylist()),
        snapshot_id=snapshot_id,
    )


def eval_reference_tables(warehouse: Warehouse) -> list[str]:
    """The ``eval.*`` tables holding benchmark items (those with an ``item_id`` column).

    Tables such as ``eval.results`` (scores, not items) have no ``item_id`` and are skipped.
    """
    names = [name for name in warehouse.table_names() if name.startswith(f"{EVAL_NAMESPACE}.")]
    return [name for name in names if ITEM_ID in warehouse.table(name).schema().column_names]


def reference_from_table(warehouse: Warehouse, name: str) -> ReferenceSet:
    """The items of one ``eval.*`` table, at its current snapshot."""
    table = warehouse.table(name)
    snapshot_id = warehouse.snapshot_id(name)
    schema = table.schema().as_arrow()
    columns = decontam_text_columns(schema, table.properties, table=name)
    data = warehouse.read(name, columns=(ITEM_ID, *columns), snapshot_id=snapshot_id)
    return reference_set(name.split(".", 1)[1], data, columns, snapshot_id=snapshot_id)


def references_from_warehouse(
    warehouse: Warehouse, tables: Iterable[str] | None = None
) -> list[ReferenceSet]:
    """Items of the named ``eval.*`` tables (default: every one holding items), sorted by name."""
    names = sorted(tables) if tables is not None else eval_reference_tables(warehouse)
    return [reference_from_table(warehouse, name) for name in names]


def reference_from_file(
    path: str | Path, *, text_columns: Sequence[str] | None = None, benchmark: str | None = None
) -> ReferenceSet:
    """Items of a Parquet or JSONL file of benchmark items.

    The id is the first of :data:`FILE_ID_COLUMNS` present, else the 1-based row number;
    the text is ``text_columns`` (default: every other string column).

    Raises:
        InputFormatError: the file is unreadable or has no text column.
    """
    source = Path(path)
    data = read_table_file(source)
    id_column = next((name for name in FILE_ID_COLUMNS if name in data.column_names), None)
    if id_column is None:
        id_column = ITEM_ID
        data = data.append_column(ITEM_ID, pa.array([str(k) for k in range(1, data.num_rows + 1)]))
    if text_columns is None:
        text_columns = [f.name for f in data.schema if f.name != id_column and _is_text(f.type)]
    if not text_columns:
        raise InputFormatError(
            source,
            "benchmark items with at least one string column",
            found=f"columns {data.column_names}",
        )
    return reference_set(benchmark or source.stem, data, text_columns, id_column=id_column)


def reference_from_benchmark(name: str) -> ReferenceSet:
    """Items of a registered benchmark as shipped (``humaneval``), without a warehouse."""
    benchmark = get_benchmark(name)
    return reference_set(benchmark.name, benchmark.load(), benchmark.text_columns)


def build_index(references: Iterable[ReferenceSet], config: DecontamConfig) -> NgramIndex:
    """An :class:`NgramIndex` of ``references`` under ``config``'s n-gram settings."""
    return NgramIndex.build(references, **config.index_scheme())


def index_from_warehouse(warehouse: Warehouse, config: DecontamConfig) -> NgramIndex:
    """An index of every ``eval.*`` benchmark table in ``warehouse``.

    Raises:
        ConfigError: the warehouse has no benchmark table (seed one with
            :func:`~posttrain.platform.evals.seed_eval_tables`).
    """
    references = references_from_warehouse(warehouse)
    if not references:
        raise ConfigError(
            "no eval.* benchmark tables in the warehouse to decontaminate against; "
            "seed them first (posttrain.platform.evals.seed_eval_tables)"
        )
    return build_index(references, config)
