"""Eval suites: a benchmark table plus how its items are asked and scored.

A suite is data plus a scorer. The data is a registered :class:`Benchmark` (an ``eval.*``
table, which silver also decontaminates against); the suite adds how a row becomes chat
messages and how an output is scored, reusing the RL verifiers (HumanEval's tests run in
the RL sandbox). Adding a suite is a table and a registry entry::

    register_benchmark(MBPP)          # the eval.mbpp table
    register_suite(Suite("mbpp", MBPP, "pass@1", ask_mbpp, score_mbpp))

Example:
    >>> get_suite("math_heldout").metric
    'exact_match'
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from posttrain.platform.errors import ConfigError
from posttrain.platform.evals.benchmark import EVAL_NAMESPACE, Benchmark
from posttrain.platform.evals.humaneval import HUMANEVAL
from posttrain.platform.evals.math_heldout import MATH_HELDOUT
from posttrain.platform.evals.registry import register_benchmark
from posttrain.platform.rl.sandbox import SandboxLimits, run_python
from posttrain.platform.rl.verifiers import (
    ExactSpec,
    ExactVerifier,
    PythonTestsSpec,
    VerifierResult,
)

Row = Mapping[str, Any]
Message = dict[str, str]


@dataclass(frozen=True)
class Suite:
    """A benchmark with its prompt builder and scorer.

    Attributes:
        name: the name ``posttrain eval run NAME`` and ``eval.results.suite`` use.
        benchmark: the registered benchmark whose ``eval.*`` table holds the items.
        metric: what the mean item score is, e.g. ``pass@1`` or ``exact_match``.
        ask: an item row → the chat messages sent to the model.
        score: an item row and the model's output → a score in [0, 1] and why.
    """

    name: str
    benchmark: Benchmark
    metric: str
    ask: Callable[[Row], list[Message]]
    score: Callable[[Row, str], VerifierResult]

    @property
    def table(self) -> str:
        return self.benchmark.table


HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one "
    "```python code block.\n\n```python\n{prompt}```"
)
# Sandbox wall time per HumanEval item: the canonical solutions run in well under a second.
HUMANEVAL_TIMEOUT_S = 10.0


def ask_humaneval(row: Row) -> list[Message]:
    return [{"role": "user", "content": HUMANEVAL_INSTRUCTION.format(prompt=row["prompt"])}]


def score_humaneval(row: Row, output: str) -> VerifierResult:
    """pass@1: the output (whole function or body) passes the item's tests in the sandbox.

    Exit status 0 is not enough: the program must also print a fresh random token after
    ``check`` returns, so an output that ends the process early (``sys.exit(0)`` at import
    or inside the function) fails. A program that reads its own source could still find
    the token: the sandbox bounds what untrusted code can do, not what it can claim.
    """
    spec = PythonTestsSpec(
        prefix=row["prompt"],
        tests=row["test"],
        entry_point=row["entry_point"],
        timeout_s=HUMANEVAL_TIMEOUT_S,
    )
    token = secrets.token_hex(16)
    program = spec.program(output) + f"\nprint({token!r})\n"
    limits = SandboxLimits(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb)
    result = run_python(program, limits)
    if not result.ok:
        return VerifierResult.of(False, f"tests failed: {result.explain(limits)}")
    if result.stdout.rstrip().rsplit("\n", 1)[-1] != token:
        return VerifierResult.of(False, "tests failed: the program ended before check() returned")
    return VerifierResult.of(True, f"tests passed in {result.seconds:.2f} s")


MATH_INSTRUCTION = "{question}\n\nShow your working, then end with a line `**Answer:** ...`."


def ask_math(row: Row) -> list[Message]:
    return [{"role": "user", "content": MATH_INSTRUCTION.format(question=row["question"])}]


def score_math(row: Row, output: str) -> VerifierResult:
    """Exact match of the final answer (case, whitespace, markdown, end punctuation aside)."""
    return ExactVerifier(ExactSpec(answer=row["answer"])).verify(output)


HUMANEVAL_SUITE = Suite("humaneval", HUMANEVAL, "pass@1", ask_humaneval, score_humaneval)
MATH_HELDOUT_SUITE = Suite("math_heldout", MATH_HELDOUT, "exact_match", ask_math, score_math)

SUITES: dict[str, Suite] = {s.name: s for s in (HUMANEVAL_SUITE, MATH_HELDOUT_SUITE)}


def register_suite(suite: Suite) -> None:
    """Make ``suite`` known by name (its benchmark too, so silver decontaminates against it)."""
    known = SUITES.get(suite.name)
    if known is not None and known != suite:
        raise ConfigError(f"a different eval suite is already registered as {suite.name!r}")
    register_benchmark(suite.benchmark)
    SUITES[suite.name] = suite


def get_suite(name: str) -> Suite:
    """The suite called ``name`` (or its table name, ``eval.humaneval``)."""
    short = name.removeprefix(f"{EVAL_NAMESPACE}.")
    if short not in SUITES:
        raise ConfigError(f"unknown eval suite {name!r}; known: {', '.join(sorted(SUITES))}")
    return SUITES[short]
