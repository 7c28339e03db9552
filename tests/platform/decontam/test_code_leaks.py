"""Code-aware decontamination: a HumanEval solution leaked without its prompt, under a
renamed function (and renamed variables), is caught; real standard-library code is not."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    ReferenceSet,
    build_index,
    reference_from_benchmark,
)
from posttrain.platform.decontam.code import code_token_stream, code_tokens
from posttrain.platform.decontam.functions import FunctionIndex
from posttrain.platform.decontam.leaks import solution_leaks, stdlib_functions
from posttrain.platform.evals.humaneval import load_humaneval
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import MESSAGES_TYPE
from posttrain.platform.steps import StepResult

CONFIG = DecontamConfig()


def _chats(ids: list[str], answers: list[str]) -> pa.Table:
    ask = make_message("user", "Write this in Python.")
    chats = [[ask, make_message("assistant", f"```python\n{a}```")] for a in answers]
    return pa.table({"record_id": ids, "messages": pa.array(chats, type=MESSAGES_TYPE)})


@pytest.fixture(scope="module")
def step() -> DecontamStep:
    return DecontamStep(build_index([reference_from_benchmark("humaneval")], CONFIG), CONFIG)


@pytest.fixture(scope="module")
def leaks() -> pa.Table:
    ids, answers, items, variants = [], [], [], []
    for problem in load_humaneval().to_pylist():
        for variant, code in solution_leaks(problem).items():
            ids.append(f"{variant}/{problem['item_id']}")
            answers.append(code)
            items.append(problem["item_id"])
            variants.append(variant)
    table = _chats(ids, answers)
    return table.append_column("item_id", pa.array(items)).append_column(
        "variant", pa.array(variants)
    )


@pytest.fixture(scope="module")
def leak_result(step: DecontamStep, leaks: pa.Table) -> StepResult:
    return step(leaks)


@pytest.mark.parametrize("variant", ["renamed_function", "renamed_variables"])
def test_solution_only_leaks_are_caught_with_recall_at_least_095(
    leaks: pa.Table, leak_result: StepResult, variant: str
) -> None:
    planted = set(leaks.filter(pc.equal(leaks["variant"], variant))["record_id"].to_pylist())
    caught = planted & set(leak_result.rejected["record_id"].to_pylist())
    assert len(planted) == 164
    assert len(caught) / len(planted) >= 0.95


def test_word_ngrams_alone_miss_most_leaks_with_renamed_variables(
    leaks: pa.Table, step: DecontamStep
) -> None:
    # What code-aware matching adds: word 13-grams see almost none of these.
    renamed = leaks.filter(pc.equal(leaks["variant"], "renamed_variables"))
    words_only = DecontamConfig(code_min_tokens=None)
    index = build_index([reference_from_benchmark("humaneval")], words_only)
    caught = DecontamStep(index, words_only)(renamed).rejected.num_rows
    assert caught / renamed.num_rows < 0.5


def test_a_code_rejection_names_the_benchmark_item_and_the_match_kind(
    leaks: pa.Table, leak_result: StepResult
) -> None:
    item_of = dict(zip(leaks["record_id"].to_pylist(), leaks["item_id"].to_pylist(), strict=True))
    code_rows = [r for r in leak_result.rejected.to_pylist() if r["detail"].startswith("code")]
    assert len(code_rows) > 100
    named_right = 0
    for row in code_rows:
        assert row["reason"] == "contaminated" and row["benchmark"] == "humaneval"
        assert row["detail"] == (
            f"code match with humaneval {row['benchmark_item_id']}: its function, identifiers "
            f"renamed ({row['matched_ngrams']} matching function"
            + ("s)" if row["matched_ngrams"] != 1 else ")")
        )
        named_right += row["benchmark_item_id"] == item_of[row["record_id"]]
    # Near-identical items (HumanEval/56 and /61 differ in bracket characters) may swap.
    assert named_right >= len(code_rows) - 2


def test_no_standard_library_function_is_flagged(step: DecontamStep) -> None:
    functions = list(stdlib_functions())
    assert len(functions) > 2000
    table = _chats([name for name, _ in functions], [source for _, source in functions])
    result = step(table)
    assert result.rejected.num_rows == 0, result.rejected["detail"].to_pylist()[:3]


def test_code_tokens_ignore_names_strings_comments_and_docstrings() -> None:
    mine = 'def mine(xs):\n    """Sort."""\n    return sorted(xs, key="a")  # done\n'
    theirs = "def yours(values):\n    return sorted(values, key='b')\n"
    assert code_tokens(theirs) == [
        "def", "ID", "(", "ID", ")", ":", "return", "sorted", "(", "ID", ",", "ID", "=",
        "STR", ")",
    ]  # fmt: skip
    index = FunctionIndex.build([mine], min_tokens=5, min_words=0)
    item, matched = index.match(code_token_stream([theirs]), 1)
    assert item.tolist() == [0] and matched.tolist() == [1]


def test_renaming_must_be_consistent_to_match() -> None:
    # Same tokens with all names abstracted, but the binding differs: x - y vs x - x.
    reference = "def gap(a, b):\n    return abs(a - b) + len(str(a)) * 2\n"
    consistent = "def f(x, y):\n    return abs(x - y) + len(str(x)) * 2\n"
    inconsistent = "def f(x, y):\n    return abs(x - x) + len(str(y)) * 2\n"
    index = FunctionIndex.build([reference], min_tokens=5, min_words=0)
    _, matched = index.match(code_token_stream([consistent, inconsistent]), 2)
    assert matched.tolist() == [1, 0]


def test_short_generic_functions_are_not_indexed() -> None:
    index = FunctionIndex.build(["def f(x):\n    return x\n"], **_scheme())
    assert index.num_functions == 0


def _scheme() -> dict[str, int]:
    assert CONFIG.code_min_tokens is not None
    return {"min_tokens": CONFIG.code_min_tokens, "min_words": CONFIG.code_min_words}


def test_hostile_text_with_many_defs_and_broken_quotes_is_matched_without_error(
    step: DecontamStep,
) -> None:
    junk = "def (" * 5000 + "'''unterminated \"\"\" ' \x00 def"
    result = step(_chats(["junk", "empty"], [junk, ""]))
    assert result.kept.num_rows == 2


def test_code_matching_can_be_turned_off_and_old_snapshots_did_not_use_it() -> None:
    off = DecontamConfig(code_min_tokens=None)
    reference = ReferenceSet("b", ("B/1",), ("def twice(v):\n    return [x * 2 for x in v] + [0]",))
    assert build_index([reference], off).functions is None
    recorded = DecontamConfig().model_dump(mode="json")
    del recorded["code_min_tokens"], recorded["code_min_words"]
    import json

    summary = {"posttrain.decontam-config": json.dumps(recorded)}
    assert DecontamConfig.recorded(summary).code_min_tokens is None
    assert DecontamConfig.recorded({}).code_min_tokens is None
