"""Evaluation benchmarks as ``eval.*`` tables: the items models are scored on, and the
reference text that decontamination keeps out of training data."""

from posttrain.platform.evals.benchmark import (
    Benchmark,
    content_hash,
    decontam_text_columns,
    seed_benchmark,
)
from posttrain.platform.evals.humaneval import HUMANEVAL, load_humaneval, seed_humaneval
from posttrain.platform.evals.registry import (
    BENCHMARKS,
    benchmark_tables,
    get_benchmark,
    register_benchmark,
    seed_eval_tables,
)

__all__ = [
    "BENCHMARKS",
    "HUMANEVAL",
    "Benchmark",
    "benchmark_tables",
    "content_hash",
    "decontam_text_columns",
    "get_benchmark",
    "load_humaneval",
    "register_benchmark",
    "seed_benchmark",
    "seed_eval_tables",
    "seed_humaneval",
]
