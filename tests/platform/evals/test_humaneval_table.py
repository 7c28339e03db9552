"""HumanEval loading, the benchmark registry and seeding ``eval.humaneval``."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.evals import (
    HUMANEVAL,
    content_hash,
    decontam_text_columns,
    get_benchmark,
    load_humaneval,
    seed_eval_tables,
    seed_humaneval,
)
from posttrain.platform.lineage import CONFIG_HASH_KEY, STAGE_KEY, Lineage
from posttrain.platform.schemas import DECONTAM_COLUMNS_PROPERTY, EVAL_HUMANEVAL
from posttrain.platform.warehouse import Warehouse


def test_load_humaneval_reads_all_164_problems_keyed_by_task_id() -> None:
    table = load_humaneval()
    assert table.schema == EVAL_HUMANEVAL
    assert table.num_rows == 164
    ids = table.column("item_id").to_pylist()
    assert ids[0] == "HumanEval/0" and ids[-1] == "HumanEval/163"
    assert len(set(ids)) == 164
    assert table.column("entry_point")[0].as_py() == "has_close_elements"


def test_load_humaneval_names_the_line_of_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(broken, "wt") as out:
        out.write(
            '{"task_id": "X/0", "prompt": "p", "canonical_solution": "s", '
            '"test": "t", "entry_point": "f"}\n{"task_id": "X/1"}\n'
        )
    with pytest.raises(InputFormatError, match=r"line 2: expected string fields .* found no"):
        load_humaneval(broken)


def test_seed_humaneval_writes_the_table_with_its_decontam_columns(warehouse: Warehouse) -> None:
    snapshot_id = seed_humaneval(warehouse)
    assert snapshot_id is not None
    assert warehouse.read("eval.humaneval").num_rows == 164
    properties = warehouse.table("eval.humaneval").properties
    assert properties[DECONTAM_COLUMNS_PROPERTY] == "prompt,canonical_solution"


def test_seeding_twice_adds_no_snapshot(warehouse: Warehouse) -> None:
    first = seed_humaneval(warehouse)
    second = seed_eval_tables(warehouse)
    assert second["eval.humaneval"] == first
    assert len(warehouse.table("eval.humaneval").snapshots()) == 1


def test_seeding_restores_a_table_someone_changed(warehouse: Warehouse) -> None:
    seed_humaneval(warehouse)
    stray = load_humaneval().slice(0, 3)
    warehouse.overwrite("eval.humaneval", stray, Lineage("manual edit"))
    snapshot_id = seed_humaneval(warehouse)
    assert warehouse.read("eval.humaneval").num_rows == 164
    summary = warehouse.snapshot_summary("eval.humaneval", snapshot_id)
    assert summary[STAGE_KEY] == "seed eval.humaneval"
    assert summary[CONFIG_HASH_KEY] == content_hash(load_humaneval())


def test_get_benchmark_accepts_short_and_table_names() -> None:
    assert get_benchmark("humaneval") is HUMANEVAL
    assert get_benchmark("eval.humaneval") is HUMANEVAL
    with pytest.raises(
        ConfigError, match="unknown benchmark 'mmlu'; known: \\['humaneval', 'math_heldout'\\]"
    ):
        get_benchmark("mmlu")


def test_decontam_columns_default_to_string_columns_except_item_id() -> None:
    schema = pa.schema(
        [
            ("item_id", pa.string()),
            ("question", pa.string()),
            ("answer", pa.large_string()),
            ("score", pa.int64()),
        ]
    )
    assert decontam_text_columns(schema, {}, table="eval.x") == ("question", "answer")


def test_decontam_columns_property_must_name_string_columns() -> None:
    schema = pa.schema([("item_id", pa.string()), ("score", pa.int64())])
    with pytest.raises(ConfigError, match=r"eval\.x: table property .* names 'score'"):
        decontam_text_columns(schema, {DECONTAM_COLUMNS_PROPERTY: "score"}, table="eval.x")
