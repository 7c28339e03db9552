"""Verifiers stored as kind + JSON spec: each kind's verdicts, and specs that do not parse."""

from __future__ import annotations

import json
import time

import pytest

from posttrain.platform.rl.answers import code_block, final_answer, parse_number
from posttrain.platform.rl.verifiers import VerifierSpecError, parse_verifier


def verify(kind: str, spec: dict[str, object], completion: str) -> tuple[float, bool, str]:
    result = parse_verifier(kind, json.dumps(spec), prompt_id="p1").verify(completion)
    return result.reward, result.passed, result.why


@pytest.mark.parametrize(
    ("completion", "number"),
    [
        ("The total is \\boxed{1,250.5} dollars", 1250.5),
        ("Sum = 60 + 83 = 143.\n\n**Answer:** 143", 143.0),
        ("answer: -7 °F", -7.0),
        ("Final answer: 3/4", 0.75),
        ("We get 12, then 15, so 18", 18.0),
        ("**Answer:** $1,036.50", 1036.5),
        ("**Answer:** about 108.46 km/h", 108.46),
        ("**Answer:** x = −3", -3.0),
        ("no digits here", None),
    ],
)
def test_the_final_number_is_read_from_the_answer(completion: str, number: float | None) -> None:
    assert parse_number(completion) == number


def test_boxed_answers_may_nest_braces() -> None:
    assert final_answer("so \\boxed{\\frac{1}{2}} is it") == "\\frac{1}{2}"


def test_the_code_block_defining_the_entry_point_is_chosen() -> None:
    text = "Example:\n```python\nprint(1)\n```\nSolution:\n```python\ndef f():\n    return 1\n```"
    assert code_block(text, "f") == "def f():\n    return 1\n"


def test_numeric_passes_within_tolerance_and_fails_outside() -> None:
    spec = {"answer": 108.46, "rel_tol": 0.01}
    assert verify("numeric", spec, "**Answer:** 108.4615 km/h")[:2] == (1.0, True)
    reward, passed, why = verify("numeric", spec, "**Answer:** 120 km/h")
    assert (reward, passed) == (0.0, False) and why == "120 ≠ expected 108.46 (rel_tol 0.01)"


def test_numeric_without_a_number_says_so() -> None:
    assert verify("numeric", {"answer": 4}, "I do not know") == (
        0.0,
        False,
        "no number found in the completion",
    )


def test_exact_normalizes_case_space_markdown_and_trailing_punctuation() -> None:
    spec = {"answer": "4 h 20 min"}
    assert verify("exact", spec, "Working...\n**Answer:**  4 H  20 min.")[1]
    assert not verify("exact", spec, "**Answer:** 4 h 25 min")[1]


def test_exact_rules_are_the_ones_listed() -> None:
    spec = {"answer": "Paris", "normalize": []}
    assert not verify("exact", spec, "answer: paris")[1]
    assert verify("exact", spec, "answer: Paris")[1]


def test_regex_search_and_fullmatch() -> None:
    assert verify("regex", {"pattern": r"\bdef \w+\("}, "def f(x): pass")[1]
    spec = {
        "pattern": "yes|no",
        "mode": "fullmatch",
        "flags": ["ignorecase"],
        "target": "final_answer",
    }
    assert verify("regex", spec, "Thinking.\nAnswer: YES")[1]
    assert not verify("regex", spec, "Answer: maybe")[1]


def test_a_catastrophic_backtracking_pattern_answers_at_once() -> None:
    # Under Python's re this search backtracks for longer than any training run.
    started = time.monotonic()
    reward, passed, _ = verify("regex", {"pattern": "(a+)+$"}, "a" * 200_000 + "!")
    assert (reward, passed) == (0.0, False)
    assert time.monotonic() - started < 5.0


def test_a_fullmatch_with_multiline_still_anchors_the_whole_text() -> None:
    spec = {"pattern": "yes", "mode": "fullmatch", "flags": ["multiline"]}
    assert verify("regex", spec, "yes")[1]
    assert not verify("regex", spec, "no\nyes")[1]


def test_json_schema_accepts_valid_and_names_the_invalid_field() -> None:
    spec = {
        "json_schema": {
            "type": "object",
            "properties": {"age": {"type": "integer"}},
            "required": ["age"],
        }
    }
    assert verify("json_schema", spec, '```json\n{"age": 3}\n```')[:2] == (1.0, True)
    reward, _, why = verify("json_schema", spec, '{"age": "three"}')
    assert reward == 0.0 and why.startswith("invalid at age:")
    assert verify("json_schema", spec, "not json")[2].startswith("not JSON")


def test_python_tests_pass_a_whole_function_or_a_body() -> None:
    spec = {
        "prefix": 'def add(a, b):\n    """Add."""\n',
        "tests": "def check(f):\n    assert f(2, 3) == 5",
        "entry_point": "add",
    }
    assert verify("python_tests", spec, "```python\ndef add(a, b):\n    return a + b\n```")[1]
    assert verify("python_tests", spec, "    return a + b\n")[1]
    reward, passed, why = verify("python_tests", spec, "    return a - b\n")
    assert (reward, passed) == (0.0, False) and "AssertionError" in why


@pytest.mark.parametrize(
    ("kind", "spec", "problem"),
    [
        ("numeric", "{not json", "Invalid JSON"),
        ("numeric", '{"answer": "many"}', "answer:"),
        ("numeric", '{"answer": 1, "tolerance": 2}', "tolerance: Extra inputs"),
        ("numeric", '{"answer": 1, "rel_tol": -1}', "rel_tol:"),
        ("regex", '{"pattern": "(unclosed"}', "pattern does not compile"),
        ("regex", '{"pattern": "(a)\\\\1"}', "no backreferences or lookarounds"),
        ("json_schema", '{"json_schema": {"type": "nonsense"}}', "not a valid JSON schema"),
        ("python_tests", '{"tests": "", "entry_point": "f"}', "tests:"),
        ("python_tests", '{"tests": "pass", "entry_point": "1bad"}', "entry_point:"),
        ("lottery", "{}", "unknown kind"),
    ],
)
def test_a_spec_that_does_not_parse_names_the_prompt_and_the_problem(
    kind: str, spec: str, problem: str
) -> None:
    with pytest.raises(VerifierSpecError) as raised:
        parse_verifier(kind, spec, prompt_id="math:42")
    message = str(raised.value)
    assert message.startswith(f"prompt 'math:42': invalid '{kind}' verifier spec: ")
    assert problem in message
