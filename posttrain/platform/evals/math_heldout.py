"""A held-out split of the math-tutor sample distribution, scored by exact match.

The items ship with the package (``data/math_heldout.jsonl``, made by
``scripts/make_eval_heldout.py`` from the sample source's own problem templates with a
seed of their own). Like every registered benchmark, silver decontaminates training data
against ``eval.math_heldout`` (question and worked solution), so these problems stay out
of the SFT corpus and the suite measures what training did not see.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from posttrain.platform.evals.benchmark import Benchmark, read_string_fields
from posttrain.platform.schemas import EVAL_MATH_HELDOUT, TABLES, TableName

DATA_FILE = Path(__file__).parent / "data" / "math_heldout.jsonl"
_FIELDS = ("item_id", "question", "solution", "answer")


def load_math_heldout(path: str | Path | None = None) -> pa.Table:
    """Every held-out problem as an Arrow table with the ``EVAL_MATH_HELDOUT`` schema.

    Raises:
        InputFormatError: a line is not JSON or lacks one of the string fields.
    """
    source = Path(path) if path is not None else DATA_FILE
    columns = read_string_fields(source, _FIELDS)
    return pa.table(columns, schema=EVAL_MATH_HELDOUT)


MATH_HELDOUT = Benchmark(
    name="math_heldout", spec=TABLES[TableName.EVAL_MATH_HELDOUT], load=load_math_heldout
)
