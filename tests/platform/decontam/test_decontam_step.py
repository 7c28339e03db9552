"""The decontamination step, running it through executors, and the summary figures."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    NgramIndex,
    ReferenceSet,
    find_contaminated,
    measure_contamination,
    run_decontam,
    summarize_contamination,
)
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.execution import InProcessExecutor, RayExecutor
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import TextView, make_message
from posttrain.platform.schemas import MESSAGES_TYPE, SILVER_CONVERSATIONS, SILVER_REJECTIONS
from posttrain.platform.warehouse import Warehouse

EVAL_SET = Path(__file__).resolve().parents[2] / "data" / "decontam_eval.parquet"
QUESTION = (
    "write a function that returns the sum of the squares of all odd numbers in a list "
    "ignoring negative numbers and values that are not integers"
)
PUZZLE = (
    "given two strings made of zeros and ones compute their bitwise exclusive or and "
    "return the result as a string of the same length"
)
CONFIG = DecontamConfig(ngram=8)


@pytest.fixture
def step() -> DecontamStep:
    bench_a = ReferenceSet("bench_a", ("A/1",), (QUESTION,))
    bench_b = ReferenceSet("bench_b", ("B/7",), (PUZZLE,))
    return DecontamStep(NgramIndex.build([bench_a, bench_b], **CONFIG.index_scheme()), CONFIG)


def conversations() -> pa.Table:
    chats = [
        [make_message("user", f"Please {QUESTION}."), make_message("assistant", "Sure.")],
        [make_message("user", "What is a monad?"), make_message("assistant", "A monoid.")],
        [make_message("user", "Hi"), make_message("assistant", f"Task: {PUZZLE[:70]}")],
    ]
    return pa.table(
        {
            "record_id": ["r1", "r2", "r3"],
            "messages": pa.array(chats, type=MESSAGES_TYPE),
            "source": ["s", "s", "t"],
            "num_turns": [2, 2, 2],
        }
    )


def test_step_keeps_clean_rows_with_all_their_columns(step: DecontamStep) -> None:
    result = step(conversations())
    assert result.kept.column_names == conversations().column_names
    assert result.kept["record_id"].to_pylist() == ["r2"]
    assert result.kept.num_rows + result.rejected.num_rows == 3


def test_rejections_carry_benchmark_item_and_count(step: DecontamStep) -> None:
    rejected = step(conversations()).rejected
    assert rejected.schema == SILVER_REJECTIONS
    rows = {row["record_id"]: row for row in rejected.to_pylist()}
    assert rows["r1"]["reason"] == "contaminated"
    assert (rows["r1"]["benchmark"], rows["r1"]["benchmark_item_id"]) == ("bench_a", "A/1")
    assert rows["r1"]["matched_ngrams"] == 19  # the question has 26 words: 19 8-grams
    assert rows["r1"]["detail"] == "8-gram overlap with bench_a A/1 (19 matching n-grams)"
    assert (rows["r3"]["benchmark"], rows["r3"]["source"]) == ("bench_b", "t")


def test_text_view_limits_which_turns_are_checked(step: DecontamStep) -> None:
    prompt_only = DecontamConfig(ngram=8, text_view=TextView.PROMPT)
    prompt_step = DecontamStep(step.index, prompt_only)
    assert prompt_step(conversations()).rejected["record_id"].to_pylist() == ["r1"]


def test_min_matches_raises_the_bar(step: DecontamStep) -> None:
    strict = DecontamConfig(ngram=8, min_matches=10)
    rejected = DecontamStep(step.index, strict)(conversations()).rejected
    assert rejected["record_id"].to_pylist() == ["r1"]


def test_conversations_read_back_from_silver_are_checked(
    step: DecontamStep, warehouse: Warehouse
) -> None:
    given = conversations()
    rows = pa.table(
        {
            f.name: given[f.name]
            if f.name in given.column_names
            else pa.nulls(given.num_rows, f.type)
            for f in SILVER_CONVERSATIONS
        }
    )
    warehouse.append("silver.conversations", rows.cast(SILVER_CONVERSATIONS), Lineage("test"))
    stored = warehouse.read("silver.conversations")
    assert step(stored).rejected["record_id"].to_pylist() == ["r1", "r3"]


def test_messages_with_only_role_and_content_are_checked(step: DecontamStep) -> None:
    message = pa.struct([("role", pa.large_string()), ("content", pa.large_string())])
    chats = pa.array([[{"role": "user", "content": QUESTION}], None], pa.large_list(message))
    table = pa.table({"record_id": ["a", "b"], "messages": chats})
    assert step(table).rejected["record_id"].to_pylist() == ["a"]


def test_batch_without_record_id_is_refused(step: DecontamStep) -> None:
    with pytest.raises(InputFormatError, match="expected a 'record_id' column"):
        step(conversations().drop_columns(["record_id"]))


def test_index_built_for_another_ngram_is_refused(step: DecontamStep) -> None:
    with pytest.raises(ConfigError, match="built with \\{'ngram': 8"):
        DecontamStep(step.index, DecontamConfig(ngram=13))


def test_contaminated_rows_keep_input_columns_and_add_evidence(step: DecontamStep) -> None:
    found = find_contaminated(conversations(), step, InProcessExecutor(), batch_rows=1)
    assert found["record_id"].to_pylist() == ["r1", "r3"]
    assert found.column_names[-4:] == ["benchmark", "benchmark_item_id", "matched_ngrams", "detail"]
    assert found["num_turns"].to_pylist() == [2, 2]


def test_summary_sums_evidence_per_benchmark(step: DecontamStep) -> None:
    summary = measure_contamination(conversations(), step, InProcessExecutor())
    assert summary.metadata() == {
        "records_examined": 3,
        "contaminated": 2,
        "contamination_rate": 0.666667,
        "contaminated.bench_a": 1,
        "items_matched.bench_a": 1,
        "matched_ngrams.bench_a": 19,
        "contaminated.bench_b": 1,
        "items_matched.bench_b": 1,
        "matched_ngrams.bench_b": 4,
    }
    assert summary.exceeds(0.5) and not summary.exceeds(0.7)


def test_summary_ignores_other_rejection_reasons() -> None:
    rows = [{"record_id": "x", "reason": "near_dup"}]
    summary = summarize_contamination(pa.Table.from_pylist(rows, schema=SILVER_REJECTIONS), 10)
    assert (summary.contaminated, summary.rate, summary.benchmarks) == (0, 0.0, ())


def test_step_pickles_with_its_index(step: DecontamStep) -> None:
    copy = pickle.loads(pickle.dumps(step))
    assert copy(conversations()).rejected.equals(step(conversations()).rejected)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"ngram": 4}, "ngram"),
        ({"ngram": 65}, "ngram"),
        ({"min_matches": 0}, "min_matches"),
        ({"text_view": "tools"}, "text_view"),
        ({"ngram": 8, "min_ngram_words": 9}, "min_ngram_words"),
        ({"n_gram": 13}, "n_gram"),
    ],
)
def test_invalid_config_is_refused(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        DecontamConfig.model_validate(settings)


@pytest.mark.slow
def test_ray_and_in_process_give_identical_output(ray_runtime: None) -> None:
    from posttrain.platform.decontam import build_index, reference_from_benchmark

    data = pq.read_table(EVAL_SET)
    config = DecontamConfig()
    step = DecontamStep(build_index([reference_from_benchmark("humaneval")], config), config)
    local = run_decontam(data, step, InProcessExecutor(), batch_rows=300)
    executor = RayExecutor()
    try:
        distributed = run_decontam(data, step, executor, batch_rows=300)
    finally:
        executor.close()
    assert distributed.kept.equals(local.kept)
    assert distributed.rejected.equals(local.rejected)
    assert local.rejected.num_rows > 1200
