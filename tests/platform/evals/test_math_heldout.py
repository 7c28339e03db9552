"""The held-out math suite: shipped, current, and a decontamination reference of silver."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from posttrain.platform.decontam import (
    DecontamConfig,
    index_from_warehouse,
    reference_from_benchmark,
)
from posttrain.platform.decontam.references import build_index
from posttrain.platform.evals import (
    BENCHMARKS,
    benchmark_tables,
    load_math_heldout,
    seed_eval_tables,
)
from posttrain.platform.evals.suites import get_suite
from posttrain.platform.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "make_eval_heldout.py"


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def sample_texts() -> list[str]:
    """The text of every record of the shipped sample data (the training inputs)."""
    texts = []
    for path in sorted((REPO / "data").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                texts.append("\n".join(strings(json.loads(line))))
            except json.JSONDecodeError:
                texts.append(line)
    for path in sorted((REPO / "data").rglob("*.parquet")):
        texts += ["\n".join(strings(row)) for row in pq.read_table(path).to_pylist()]
    return texts


def test_the_shipped_items_are_what_the_script_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("make_eval_heldout", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.build() == script.OUTPUT.read_text(encoding="utf-8")


def test_the_suite_is_a_registered_benchmark_silver_decontaminates_against(
    warehouse: Warehouse,
) -> None:
    assert "eval.math_heldout" in benchmark_tables()
    assert get_suite("math_heldout").benchmark is BENCHMARKS["math_heldout"]
    seed_eval_tables(warehouse)
    index = index_from_warehouse(warehouse, DecontamConfig())
    items = load_math_heldout().to_pylist()
    leaked = f"Can you help?\n{items[7]['question']}\n\n{items[7]['solution']}"
    matches = index.match([leaked, "What is 2 + 2? **Answer:** 4"])
    assert index.item_id(int(matches.item[0])) == items[7]["item_id"]
    assert matches.matched[1] == 0


def test_no_sample_record_hits_the_held_out_items() -> None:
    # A held-out split: the training data must not already contain it, or silver would
    # reject sample records that were never planted.
    index = build_index([reference_from_benchmark("math_heldout")], DecontamConfig())
    texts = sample_texts()
    assert len(texts) > 2000
    matches = index.match(texts)
    assert int((matches.matched > 0).sum()) == 0
    assert index.unmatchable_items() == []  # every item is long enough to be caught
