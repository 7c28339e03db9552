"""Evaluation benchmarks as ``eval.*`` tables: the items models are scored on, and the
reference text that decontamination keeps out of training data; suites, runners and
``eval.results``.

Public API for other code (the experiment launcher, the versions sensor)::

    from posttrain.platform.evals import run_suite, runner_for
    summary = run_suite(warehouse, "humaneval", runner_for("openai:http://h:8000/v1#m"),
                        experiment_id="exp-1", corpus_version="sft@v3", limit=20)
"""

from typing import TYPE_CHECKING

from posttrain.platform._lazy import lazy_exports
from posttrain.platform.evals.benchmark import (
    Benchmark,
    content_hash,
    decontam_text_columns,
    seed_benchmark,
)
from posttrain.platform.evals.humaneval import HUMANEVAL, load_humaneval, seed_humaneval
from posttrain.platform.evals.math_heldout import MATH_HELDOUT, load_math_heldout
from posttrain.platform.evals.registry import (
    BENCHMARKS,
    benchmark_tables,
    get_benchmark,
    register_benchmark,
    seed_eval_tables,
)

if TYPE_CHECKING:
    from posttrain.platform.evals.run import EvalSummary, run_suite
    from posttrain.platform.evals.runners import (
        Completion,
        GenerationSettings,
        OpenAIRunner,
        Runner,
        TransformersRunner,
        runner_for,
    )
    from posttrain.platform.evals.suites import SUITES, Suite, get_suite, register_suite

# Suites, runners and runs import the verifiers, the sandbox and the warehouse: loaded on
# first use so that importing the benchmark registry stays as light as it was.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "run": ["EvalSummary", "run_suite"],
        "runners": [
            "Completion",
            "GenerationSettings",
            "OpenAIRunner",
            "Runner",
            "TransformersRunner",
            "runner_for",
        ],
        "suites": ["SUITES", "Suite", "get_suite", "register_suite"],
    },
)

__all__ = [
    "BENCHMARKS",
    "HUMANEVAL",
    "MATH_HELDOUT",
    "SUITES",
    "Benchmark",
    "Completion",
    "EvalSummary",
    "GenerationSettings",
    "OpenAIRunner",
    "Runner",
    "Suite",
    "TransformersRunner",
    "benchmark_tables",
    "content_hash",
    "decontam_text_columns",
    "get_benchmark",
    "get_suite",
    "load_humaneval",
    "load_math_heldout",
    "register_benchmark",
    "register_suite",
    "run_suite",
    "runner_for",
    "seed_benchmark",
    "seed_eval_tables",
    "seed_humaneval",
]
