"""The experiment's one link to the evals: which suites exist, and running them on a
checkpoint.

Eval suites are named in an experiment file (``evals: [humaneval]``) and checked against
the evals registry (:mod:`posttrain.platform.evals.registry`). :func:`run_eval_suites` is
the single call site the experiment job uses to score its checkpoint; it delegates to the
evals package's suite runner when that exists, and says so when it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from posttrain.platform.warehouse import Warehouse


def known_suites() -> set[str]:
    """Names an experiment may list under ``evals``: every registered benchmark (by name
    and by table name) and every eval suite of the evals package."""
    from posttrain.platform.evals import registry

    names: set[str] = set()
    for name, benchmark in registry.BENCHMARKS.items():
        names |= {name, benchmark.table}
    try:
        from posttrain.platform.evals.suites import SUITES  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the evals package without suites yet: benchmarks only
        return names
    return names | set(SUITES)


@dataclass(frozen=True)
class EvalOutcome:
    """What running one suite on a checkpoint gave (or why it did not run)."""

    suite: str
    ran: bool
    detail: str
    metrics: dict[str, Any]


def run_eval_suites(
    warehouse: Warehouse,
    suites: Sequence[str],
    *,
    checkpoint_path: str,
    experiment_id: str,
    corpus_versions: Sequence[str],
    limit: int | None = None,
) -> list[EvalOutcome]:
    """Run each eval suite on the checkpoint (a local ``transformers`` runner) and write
    its scores to ``eval.results``, with the experiment id and the corpus references.

    The only place the experiments call the evals package
    (``posttrain.platform.evals.run_suite`` and ``runner_for``). Without them, each suite
    is reported as not run, with the reason, and nothing is written.
    """
    if not suites:
        return []
    try:
        from posttrain.platform.evals import (  # type: ignore[attr-defined,unused-ignore]
            run_suite,
            runner_for,
        )
    except ImportError:
        reason = "not run: posttrain.platform.evals has no run_suite yet"
        return [EvalOutcome(suite, False, reason, {}) for suite in suites]
    runner = runner_for(f"local:{checkpoint_path}")
    outcomes = []
    for suite in suites:
        summary = run_suite(
            warehouse,
            suite,
            runner,
            experiment_id=experiment_id,
            corpus_version=", ".join(corpus_versions),
            limit=limit,
        )
        outcomes.append(EvalOutcome(suite, True, summary.line(), summary.as_dict()))
    return outcomes
