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
    and by table name) and every suite the evals registry declares."""
    from posttrain.platform.evals import registry

    names: set[str] = set()
    for name, benchmark in registry.BENCHMARKS.items():
        names |= {name, benchmark.table}
    suites = getattr(registry, "SUITES", None)
    if isinstance(suites, dict):
        names |= set(suites)
    return names


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
    checkpoint_id: str,
    checkpoint_path: str,
    experiment_id: str,
    corpus_versions: Sequence[str],
) -> list[EvalOutcome]:
    """Run each eval suite on the checkpoint and write its scores to ``eval.results``.

    The runner belongs to the evals package (``posttrain.platform.evals``: a function that
    runs a suite on a checkpoint). Until it is there, each suite is reported as not run,
    with the reason, and nothing is written.
    """
    from posttrain.platform import evals

    runner = getattr(evals, "run_suite_on_checkpoint", None)
    outcomes = []
    for suite in suites:
        if runner is None:
            outcomes.append(
                EvalOutcome(suite, False, "no suite runner in posttrain.platform.evals yet", {})
            )
            continue
        result = runner(
            warehouse,
            suite,
            checkpoint=checkpoint_path,
            checkpoint_id=checkpoint_id,
            experiment_id=experiment_id,
            corpus_versions=list(corpus_versions),
        )
        metrics = dict(getattr(result, "metrics", {}) or {})
        outcomes.append(EvalOutcome(suite, True, "scored", metrics))
    return outcomes
