"""Run one eval suite with one runner and record every item in ``eval.results``.

The public entry point the experiment launcher and the versions sensor call::

    summary = run_suite(warehouse, "humaneval", runner_for("openai:http://h/v1#m"),
                        experiment_id="exp-1", corpus_version="sft@v3", limit=20)

A run is one append of one row per item: whatever the model or the scorer does (refused
connection, timeout, malformed response, endless output, a crash in the scorer), the item
gets a row with its ``error`` and score 0, so the run is never lost and a failing endpoint
never looks like a good score.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from posttrain.platform.evals.benchmark import ITEM_ID, seed_benchmark
from posttrain.platform.evals.runners import Completion, Runner
from posttrain.platform.evals.suites import Suite, get_suite
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import EVAL_RESULTS, TableName
from posttrain.platform.warehouse import Warehouse

RESULTS = TableName.EVAL_RESULTS
# Scoring runs the sandbox (one subprocess per HumanEval item): a few at a time.
SCORING_WORKERS = 4


@dataclass(frozen=True)
class EvalSummary:
    """What one :func:`run_suite` call measured and wrote."""

    run_id: str
    suite: str
    metric: str
    model: str
    items: int
    score: float  # mean item score; items with an error count as 0
    errors: int
    cached: int
    experiment_id: str | None
    corpus_version: str | None
    suite_snapshot_id: int | None
    results_snapshot_id: int | None
    seconds: float
    checkpoint_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for a person: suite, metric, model, items, errors."""
        return (
            f"{self.suite} {self.metric} = {self.score:.3f} on {self.items} items "
            f"({self.errors} errors, {self.cached} cached) for {self.model} "
            f"[run {self.run_id}, {self.seconds:.1f} s]"
        )


def _items(
    warehouse: Warehouse, suite: Suite, limit: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The suite's items at a pinned snapshot, in item id order (seeded when missing)."""
    if warehouse.snapshot_id(suite.table) is None:
        seed_benchmark(warehouse, suite.benchmark)
    snapshot_id = warehouse.snapshot_id(suite.table)
    data = warehouse.read(suite.table, snapshot_id=snapshot_id).sort_by(ITEM_ID)
    if limit is not None:
        data = data.slice(0, limit)
    return data.to_pylist(), snapshot_id


def _text(value: str | None) -> str | None:
    """``value`` as valid UTF-8: an endpoint may send lone surrogates (``"\\ud800"`` in
    JSON), which Arrow refuses to store; one such output must not lose the run."""
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8")


def _score(
    suite: Suite, row: dict[str, Any], completion: Completion
) -> tuple[float, str | None, str | None]:
    """(score, detail, error) of one item."""
    if completion.error is not None or completion.output is None:
        return 0.0, None, completion.error or "no output"
    try:
        verdict = suite.score(row, completion.output)
    except Exception as exc:  # a scorer crash is this item's error, not the run's
        return 0.0, None, f"scorer failed: {type(exc).__name__}: {exc}"
    return verdict.reward, verdict.why, None


def run_suite(
    warehouse: Warehouse,
    suite: str,
    runner: Runner,
    *,
    experiment_id: str | None = None,
    corpus_version: str | None = None,
    limit: int | None = None,
    checkpoint_id: str | None = None,
) -> EvalSummary:
    """Ask ``runner`` every item of ``suite``, score the outputs, append them to
    ``eval.results`` and return the summary.

    Args:
        warehouse: where the suite's ``eval.*`` table is (seeded if missing) and where
            ``eval.results`` is written.
        suite: a registered suite name (``humaneval``, ``math_heldout``).
        runner: from :func:`~posttrain.platform.evals.runners.runner_for`.
        experiment_id: the experiment whose checkpoint is evaluated (recorded).
        corpus_version: the corpus version evaluated for, e.g. ``sft@v3`` (recorded).
        limit: only the first ``limit`` items in item id order.
        checkpoint_id: the ``lineage.checkpoints`` row the runner's checkpoint is (recorded).

    Raises:
        ConfigError: unknown suite. Nothing a model or scorer does raises.
    """
    chosen = get_suite(suite)
    started = time.monotonic()
    created_at = datetime.now(UTC)
    run_id = f"{created_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    rows, suite_snapshot = _items(warehouse, chosen, limit)
    prompts = [chosen.ask(row) for row in rows]
    try:
        completions = runner.generate(prompts)
        if len(completions) != len(prompts):
            raise RuntimeError(f"runner returned {len(completions)} outputs for {len(prompts)}")
    except Exception as exc:  # e.g. a checkpoint that does not load: every item says why
        error = f"runner failed: {type(exc).__name__}: {exc}"
        completions = [Completion(None, error) for _ in prompts]
    completions = [replace(c, output=_text(c.output), error=_text(c.error)) for c in completions]
    with ThreadPoolExecutor(SCORING_WORKERS, "posttrain-eval-score") as pool:
        scored = list(pool.map(lambda rc: _score(chosen, *rc), zip(rows, completions, strict=True)))
    settings = runner.settings.canonical_json()
    data = pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "item": row[ITEM_ID],
                "suite": chosen.name,
                "metric": chosen.metric,
                "score": score,
                "detail": _text(detail),
                "output": completion.output,
                "error": _text(error),
                "latency_s": completion.latency_s,
                "cached": completion.cached,
                "model": runner.model,
                "experiment_id": experiment_id,
                "corpus_version": corpus_version,
                "suite_snapshot_id": suite_snapshot,
                "settings": settings,
                "created_at": created_at,
                "checkpoint_id": checkpoint_id,
            }
            for row, completion, (score, detail, error) in zip(
                rows, completions, scored, strict=True
            )
        ],
        schema=EVAL_RESULTS,
    )
    warehouse.ensure_table(RESULTS)
    lineage = Lineage(
        stage=f"eval {chosen.name}",
        inputs={chosen.table: suite_snapshot},
        config_hash=runner.settings.config_hash(),
        properties={"posttrain.eval.run-id": run_id, "posttrain.eval.model": runner.model},
    )
    results_snapshot = warehouse.append(RESULTS, data, lineage)
    scores = [score for score, _, _ in scored]
    return EvalSummary(
        run_id=run_id,
        suite=chosen.name,
        metric=chosen.metric,
        model=runner.model,
        items=len(rows),
        score=sum(scores) / len(scores) if scores else 0.0,
        errors=sum(1 for _, _, error in scored if error is not None),
        cached=sum(1 for c in completions if c.cached),
        experiment_id=experiment_id,
        corpus_version=corpus_version,
        suite_snapshot_id=suite_snapshot,
        results_snapshot_id=results_snapshot,
        seconds=time.monotonic() - started,
        checkpoint_id=checkpoint_id,
    )
