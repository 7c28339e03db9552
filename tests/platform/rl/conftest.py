"""Small real warehouses holding the inputs of gold.rl_prompts."""

from __future__ import annotations

import pyarrow as pa
import pytest

from posttrain.platform.evals import load_humaneval
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import Message, make_message
from posttrain.platform.schemas import SILVER_CONVERSATIONS, TableName
from posttrain.platform.warehouse import Warehouse


def conversation(record_id: str, question: str, reply: str, source: str = "math-tutor") -> dict:
    messages: list[Message] = [
        make_message("system", "Answer math word problems step by step."),
        make_message("user", question),
        make_message("assistant", reply),
    ]
    return {"record_id": record_id, "messages": messages, "source": source, "license": "CC-BY-4.0"}


MATH_ROWS = [
    conversation("m-mean", "Mean of 60, 83, 58, 56?", "Sum = 257.\n\n**Answer:** 64.25"),
    conversation(
        "m-speed", "470 km in 4 h 20 min?", "470 ÷ 4.333 ≈ 108.46.\n\n**Answer:** about 108.46 km/h"
    ),
    conversation("m-time", "How long?", "Add them up.\n\n**Answer:** 4 h 20 min"),
    conversation("m-none", "Any thoughts?", "It depends on the units you pick."),
    conversation("d-other", "What is 2 + 2?", "**Answer:** 4", source="dev-support"),
]


def write_humaneval(warehouse: Warehouse, problems: pa.Table) -> None:
    warehouse.overwrite(TableName.EVAL_HUMANEVAL, problems, Lineage("test"))


def write_silver(warehouse: Warehouse, rows: list[dict]) -> None:
    warehouse.overwrite(
        TableName.SILVER_CONVERSATIONS,
        pa.Table.from_pylist(rows, schema=SILVER_CONVERSATIONS),
        Lineage("test"),
    )


@pytest.fixture(scope="session")
def humaneval() -> pa.Table:
    return load_humaneval()


@pytest.fixture
def rl_inputs(warehouse: Warehouse, humaneval: pa.Table) -> Warehouse:
    """Three HumanEval problems, one with a wrong canonical solution, and the math rows."""
    problems = humaneval.slice(0, 3).to_pylist()
    problems[2]["canonical_solution"] = "    return None\n"
    write_humaneval(warehouse, pa.Table.from_pylist(problems, schema=humaneval.schema))
    write_silver(warehouse, MATH_ROWS)
    return warehouse
