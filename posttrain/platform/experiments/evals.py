"""The experiment's one link to the evals: which suites exist, and running them on a
checkpoint.

Eval suites are named in an experiment file (``evals: [humaneval]``) and checked against
the evals package's suites (:mod:`posttrain.platform.evals.suites`): a benchmark table
without a scorer is not a suite, and a name accepted here must run after training.
:func:`run_eval_suites` is the single call site the experiment job (and ``posttrain
experiment launch``) uses to score its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from posttrain.platform.evals.cache import EvalCache
    from posttrain.platform.experiments.manifest import Manifest


def known_suites() -> set[str]:
    """Names an experiment may list under ``evals``: every eval suite, by name and by the
    name of its table (``humaneval``, ``eval.humaneval``)."""
    from posttrain.platform.evals.suites import SUITES

    return set(SUITES) | {suite.table for suite in SUITES.values()}


@dataclass(frozen=True)
class EvalOutcome:
    """What running one suite on a checkpoint gave."""

    suite: str
    ran: bool
    detail: str
    metrics: dict[str, Any]


def corpus_version(manifest: Manifest) -> str:
    """The corpora a manifest trained on, as recorded with its eval results: each reference
    as written when it names a version or snapshot (``gold.sft@v3``), else pinned to the
    snapshot the launch froze (``gold.sft`` → ``gold.sft@<snapshot id>``)."""
    return ", ".join(
        ref if "@" in ref else f"{table}@{snapshot_id}"
        for ref, table, snapshot_id in manifest.pinned_sources()
    )


def run_eval_suites(
    warehouse: Warehouse,
    manifest: Manifest,
    *,
    checkpoint_id: str,
    checkpoint_path: str,
    cache: EvalCache | None = None,
) -> list[EvalOutcome]:
    """Run each of the manifest's eval suites on its checkpoint (a local ``transformers``
    runner), at most ``eval_limit`` items each and ``eval_max_tokens`` output tokens an
    item, and write the scores to ``eval.results`` with the checkpoint id, the experiment
    id and the corpus version (:func:`corpus_version`). Outputs are cached in ``cache``
    (default: ``$POSTTRAIN_HOME/eval-cache.sqlite``).

    A checkpoint that does not load or a model that misbehaves gives per-item errors in
    ``eval.results``, not an exception.

    Raises:
        ConfigError: a suite the evals package does not know (validation refuses it first,
            but a replayed manifest may name a suite unregistered since).
    """
    if not manifest.eval_suites:
        return []
    from posttrain.platform.evals import GenerationSettings, run_suite, runner_for

    config = manifest.experiment_config()
    settings = GenerationSettings()
    if config.eval_max_tokens is not None:
        settings = GenerationSettings(max_tokens=config.eval_max_tokens)
    runner = runner_for(f"local:{checkpoint_path}", settings=settings, cache=cache)
    label = corpus_version(manifest)
    limit = config.eval_limit
    outcomes = []
    for suite in manifest.eval_suites:
        summary = run_suite(
            warehouse,
            suite,
            runner,
            experiment_id=manifest.experiment_id,
            corpus_version=label,
            limit=limit,
            checkpoint_id=checkpoint_id,
        )
        outcomes.append(EvalOutcome(suite, True, summary.line(), summary.as_dict()))
    return outcomes
