"""The n-gram index: building it from eval tables and files, and matching documents."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.decontam import (
    DecontamConfig,
    NgramIndex,
    ReferenceSet,
    build_index,
    eval_reference_tables,
    index_from_warehouse,
    reference_from_benchmark,
    reference_from_file,
)
from posttrain.platform.decontam.index import NO_ITEM
from posttrain.platform.errors import ConfigError
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import DECONTAM_COLUMNS_PROPERTY, TableSpec
from posttrain.platform.warehouse import Warehouse

FOX = "the quick brown fox jumps over the lazy dog near the river bank"
CAT = "a sleepy cat naps on the warm window sill every single afternoon"


def toy_index(ngram: int = 3, **kwargs: int) -> NgramIndex:
    items = ReferenceSet("toy", ("fox", "cat", "fox-again"), (FOX, CAT, FOX))
    return NgramIndex.build([items], ngram=ngram, **kwargs)


def test_match_reports_item_with_most_distinct_shared_ngrams() -> None:
    matches = toy_index().match(
        [
            "the quick brown fox jumps",  # 3 fox trigrams
            "a sleepy cat naps on the warm window and the quick brown",  # 6 cat vs 1 fox
            "nothing in common here at all",
            None,
        ]
    )
    assert [int(i) for i in matches.item] == [0, 1, NO_ITEM, NO_ITEM]
    assert matches.matched.tolist() == [3, 6, 0, 0]


def test_repeated_ngrams_of_a_document_count_once() -> None:
    matches = toy_index().match(["quick brown fox " * 5])
    assert matches.matched.tolist() == [1]


def test_identical_items_tie_to_the_first_listed() -> None:
    index = toy_index()
    assert index.item_id(int(index.match([FOX]).item[0])) == "fox"


def test_index_survives_pickling() -> None:
    index = toy_index()
    copy = pickle.loads(pickle.dumps(index))
    assert copy.match([CAT]).matched.tolist() == index.match([CAT]).matched.tolist() == [10]


def test_min_ngram_words_leaves_out_digit_runs() -> None:
    items = ReferenceSet("digits", ("d",), ("0 1 2 3 4 5 6 7 8 9 a b c d e f",))
    assert NgramIndex.build([items], ngram=13).num_ngrams == 4
    assert NgramIndex.build([items], ngram=13, min_ngram_words=1).num_ngrams == 0


def test_items_shorter_than_the_ngram_are_reported_unmatchable() -> None:
    items = ReferenceSet("short", ("tiny", "long"), ("return len string", FOX))
    assert NgramIndex.build([items], ngram=5).unmatchable_items() == ["tiny"]


def test_benchmark_names_must_be_distinct() -> None:
    items = ReferenceSet("toy", ("a",), (FOX,))
    with pytest.raises(ConfigError, match="distinct"):
        NgramIndex.build([items, items], ngram=3)


def test_index_from_warehouse_reads_every_eval_item_table(warehouse: Warehouse) -> None:
    snapshot_id = seed_humaneval(warehouse)
    spec = TableSpec(
        "eval.toyqa",
        pa.schema([("item_id", pa.string()), ("question", pa.string()), ("answer", pa.string())]),
        ("item_id",),
        "toy",
        {DECONTAM_COLUMNS_PROPERTY: "question"},
    )
    warehouse.ensure_table(spec)
    warehouse.append(
        "eval.toyqa",
        pa.table({"item_id": ["q1"], "question": [FOX], "answer": [CAT]}),
        Lineage("test"),
    )
    warehouse.catalog.create_table("eval.results", pa.schema([("score", pa.float64())]))
    assert eval_reference_tables(warehouse) == ["eval.humaneval", "eval.toyqa"]
    index = index_from_warehouse(warehouse, DecontamConfig(ngram=5))
    assert index.benchmarks == ("humaneval", "toyqa")
    assert index.snapshot_ids["humaneval"] == snapshot_id
    fox, cat = index.match([FOX, CAT]).item
    assert index.benchmark(int(fox)) == "toyqa" and index.item_id(int(fox)) == "q1"
    assert cat == NO_ITEM  # the answer column is not a decontamination column


def test_index_from_an_empty_warehouse_is_a_config_error(warehouse: Warehouse) -> None:
    with pytest.raises(ConfigError, match=r"no eval\.\* benchmark tables"):
        index_from_warehouse(warehouse, DecontamConfig())


def test_reference_from_file_takes_task_id_and_string_columns(tmp_path: Path) -> None:
    path = tmp_path / "mini_bench.jsonl"
    rows = [{"task_id": "M/1", "question": FOX, "points": 3}, {"task_id": "M/2", "question": CAT}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    reference = reference_from_file(path)
    assert (reference.benchmark, reference.item_ids, reference.texts) == (
        "mini_bench",
        ("M/1", "M/2"),
        (FOX, CAT),
    )


def test_shipped_humaneval_reference_joins_prompt_and_solution() -> None:
    reference = reference_from_benchmark("humaneval")
    assert len(reference.item_ids) == 164
    assert reference.texts[0].startswith("from typing import List")
    assert "return False" in reference.texts[0]
    index = build_index([reference], DecontamConfig())
    assert index.unmatchable_items() == []
    assert np.all(index.item_ngram_counts > 0)
