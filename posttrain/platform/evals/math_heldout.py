"""A held-out split of the math-tutor sample distribution, scored by exact match.

The items ship with the package (``data/math_heldout.jsonl``, made by
``scripts/make_eval_heldout.py`` from the sample source's own problem templates with a
seed of their own). Like every registered benchmark, silver decontaminates training data
against ``eval.math_heldout`` (question and worked solution), so these problems stay out
of the SFT corpus and the suite measures what training did not see.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from posttrain.platform.errors import InputFormatError
from posttrain.platform.evals.benchmark import Benchmark
from posttrain.platform.schemas import EVAL_MATH_HELDOUT, TABLES, TableName

DATA_FILE = Path(__file__).parent / "data" / "math_heldout.jsonl"
_FIELDS = ("item_id", "question", "solution", "answer")


def load_math_heldout(path: str | Path | None = None) -> pa.Table:
    """Every held-out problem as an Arrow table with the ``EVAL_MATH_HELDOUT`` schema.

    Raises:
        InputFormatError: a line is not JSON or lacks one of the string fields.
    """
    source = Path(path) if path is not None else DATA_FILE
    columns: dict[str, list[str]] = {name: [] for name in _FIELDS}
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(
                source, "one JSON object per line", line=number, found=str(exc)
            ) from None
        missing = [name for name in _FIELDS if not isinstance(item.get(name), str)]
        if missing:
            raise InputFormatError(
                source, f"string fields {list(_FIELDS)}", line=number, found=f"no {missing}"
            )
        for name in _FIELDS:
            columns[name].append(item[name])
    return pa.table(columns, schema=EVAL_MATH_HELDOUT)


MATH_HELDOUT = Benchmark(
    name="math_heldout", spec=TABLES[TableName.EVAL_MATH_HELDOUT], load=load_math_heldout
)
