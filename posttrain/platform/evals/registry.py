"""The benchmarks posttrain knows by name, and seeding all their ``eval.*`` tables.

A new benchmark is a loader plus a :class:`~posttrain.platform.schemas.TableSpec`:

    >>> from posttrain.platform.evals import Benchmark, register_benchmark  # doctest: +SKIP
    >>> register_benchmark(Benchmark("mbpp", MBPP_SPEC, load_mbpp))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable

from posttrain.platform.errors import ConfigError
from posttrain.platform.evals.benchmark import EVAL_NAMESPACE, Benchmark, seed_benchmark
from posttrain.platform.evals.humaneval import HUMANEVAL
from posttrain.platform.evals.math_heldout import MATH_HELDOUT
from posttrain.platform.warehouse import Warehouse

BENCHMARKS: dict[str, Benchmark] = {HUMANEVAL.name: HUMANEVAL, MATH_HELDOUT.name: MATH_HELDOUT}


def register_benchmark(benchmark: Benchmark) -> None:
    """Make ``benchmark`` known by name; a different benchmark under a taken name is refused."""
    known = BENCHMARKS.get(benchmark.name)
    if known is not None and known != benchmark:
        raise ConfigError(f"a different benchmark is already registered as {benchmark.name!r}")
    BENCHMARKS[benchmark.name] = benchmark


def benchmark_tables() -> list[str]:
    """The ``eval.*`` table of every registered benchmark, in registration order.

    Silver decontaminates against these, so its asset depends on each of them.
    """
    return [benchmark.table for benchmark in BENCHMARKS.values()]


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (``humaneval`` or its table name ``eval.humaneval``)."""
    short = name.removeprefix(f"{EVAL_NAMESPACE}.")
    if short not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[short]


def seed_eval_tables(
    warehouse: Warehouse, names: Iterable[str] | None = None
) -> dict[str, int | None]:
    """Seed the ``eval.*`` table of each named benchmark (default: all registered).

    Returns:
        Table name → snapshot id holding its items.
    """
    selected = (
        [get_benchmark(name) for name in names] if names is not None else list(BENCHMARKS.values())
    )
    return {benchmark.table: seed_benchmark(warehouse, benchmark) for benchmark in selected}
