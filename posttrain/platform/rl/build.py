"""Build ``gold.rl_prompts``: RL tasks whose verifiers are proven on their references.

Two seeds: the HumanEval problems of ``eval.humaneval`` (their ``check`` functions as
``python_tests`` verifiers run in the sandbox) and the math conversations of
``silver.conversations`` (already parsed, redacted, deduplicated and decontaminated; the
numeric answer of the first assistant turn becomes a ``numeric`` verifier, a compound
answer such as "4 h 20 min" an ``exact`` one).

Every verifier must pass its own reference and fail an empty completion before its task
enters the table. A task that does not is a row of ``gold.rl_prompts_rejections`` with the
reason and the verifier's verdict: a table rather than asset metadata, because it is
queried like ``silver.rejections`` (``posttrain show``), keeps every refused spec for a
person to fix, and its snapshot is pinned beside the corpus it explains.

The checks run in a thread pool: a ``python_tests`` check spends its time waiting on a
sandbox subprocess, so threads keep the cores busy without pickling anything.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import Message, make_message
from posttrain.platform.rl.answers import final_answer, numbers, states_answer
from posttrain.platform.rl.verifiers import (
    ExactSpec,
    NumericSpec,
    PythonTestsSpec,
    VerifierKind,
    VerifierSpecError,
    parse_verifier,
    spec_json,
)
from posttrain.platform.schemas import GOLD_RL_PROMPTS, GOLD_RL_PROMPTS_REJECTIONS, TableName
from posttrain.platform.warehouse import Warehouse

RL_PROMPTS = TableName.GOLD_RL_PROMPTS
RL_REJECTIONS = TableName.GOLD_RL_PROMPTS_REJECTIONS
HUMANEVAL_TABLE = TableName.EVAL_HUMANEVAL
SILVER = TableName.SILVER_CONVERSATIONS

HUMANEVAL_SOURCE = "humaneval"
HUMANEVAL_LICENSE = "MIT"
HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one "
    "```python code block.\n\n```python\n{prompt}```"
)
_APPROXIMATE = re.compile(r"\b(?:about|approximately|approx\.?|roughly|around)\b|≈|~")


class RejectReason:
    """Why a task was left out of ``gold.rl_prompts`` (``gold.rl_prompts_rejections.reason``)."""

    NO_ANSWER = "no_answer"  # the source states no final answer to verify against
    INVALID_SPEC = "invalid_spec"  # the verifier spec does not parse
    REFERENCE_FAILS = "reference_fails"  # the verifier refuses its own reference
    EMPTY_PASSES = "empty_passes"  # the verifier rewards an empty completion


class RlPromptsConfig(FrozenConfig):
    """Which tasks seed ``gold.rl_prompts`` and how they are verified."""

    humaneval: bool = Field(default=True, description="Seed the HumanEval problems.")
    math_sources: tuple[str, ...] = Field(
        default=("math-tutor",), description="silver.conversations sources of math problems."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="Per test run.")
    approximate_rel_tol: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description='Relative tolerance when the reference says "about" or "≈".',
    )


@dataclass(frozen=True)
class Task:
    """A candidate row of ``gold.rl_prompts``, before its verifier is proven."""

    prompt_id: str
    prompt: list[Message]
    verifier_kind: str
    verifier_spec: str
    reference: str
    source: str
    source_id: str
    license: str | None


@dataclass(frozen=True)
class Rejection:
    """A task refused, and why."""

    prompt_id: str
    reason: str
    detail: str
    verifier_kind: str | None
    verifier_spec: str | None
    source: str
    source_id: str


@dataclass(frozen=True)
class RlPromptsReport:
    """What a build did, for asset metadata."""

    tasks: int
    rejections: list[Rejection]
    kinds: dict[str, int]  # verifier kind → tasks kept
    candidates_by_kind: dict[str, int]  # verifier kind → tasks checked
    seconds: float
    check_seconds: float
    slowest_reference_seconds: float
    snapshot_id: int | None
    rejections_snapshot_id: int | None
    inputs: dict[str, int | None]

    @property
    def reference_pass_rate(self) -> float:
        """Share of checked tasks whose verifier passed its reference (and failed empty)."""
        checked = sum(self.candidates_by_kind.values())
        return self.tasks / checked if checked else 1.0


def humaneval_tasks(problems: pa.Table, timeout_s: float = 10.0) -> list[Task]:
    """One ``python_tests`` task per HumanEval problem; its reference is the canonical
    solution, written as a model would answer (the whole function in a fence)."""
    tasks = []
    for row in problems.to_pylist():
        spec = PythonTestsSpec(
            prefix=row["prompt"],
            tests=row["test"],
            entry_point=row["entry_point"],
            timeout_s=timeout_s,
        )
        tasks.append(
            Task(
                prompt_id=f"{HUMANEVAL_SOURCE}:{row['item_id']}",
                prompt=[make_message("user", HUMANEVAL_INSTRUCTION.format(prompt=row["prompt"]))],
                verifier_kind=VerifierKind.PYTHON_TESTS,
                verifier_spec=spec_json(spec),
                reference=f"```python\n{row['prompt']}{row['canonical_solution']}```",
                source=HUMANEVAL_SOURCE,
                source_id=row["item_id"],
                license=HUMANEVAL_LICENSE,
            )
        )
    return tasks


def math_task(row: dict[str, Any], config: RlPromptsConfig) -> Task | Rejection:
    """The first question of a math conversation, verified by the answer its tutor gave.

    The prompt is every message up to the first user turn (system prompts included); the
    reference is the first assistant reply. One number in its stated answer makes a
    ``numeric`` verifier; several ("4 h 20 min", "x = 3 and y = 4") an ``exact`` one.
    """
    source = row.get("source") or ""
    record_id = row["record_id"]
    prompt_id = f"{source}:{record_id}"
    messages: list[Message] = list(row.get("messages") or [])
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    reply = next(
        (m for m in messages[(first_user or 0) + 1 :] if m["role"] == "assistant"),
        None,
    )
    if first_user is None or reply is None or not reply["content"]:
        return Rejection(
            prompt_id, RejectReason.NO_ANSWER, "no user turn answered by the assistant",
            None, None, source, record_id,
        )  # fmt: skip
    reference = reply["content"]
    if not states_answer(reference):
        return Rejection(
            prompt_id, RejectReason.NO_ANSWER, "the reply states no final answer",
            None, None, source, record_id,
        )  # fmt: skip
    answer = final_answer(reference)
    found = numbers(answer)
    spec: ExactSpec | NumericSpec
    if len(found) == 1:
        approximate = bool(_APPROXIMATE.search(answer))
        # An answer stated as "about 108.46 km/h" is rounded: a completion that keeps more
        # digits is right too.
        tolerance = {"rel_tol": config.approximate_rel_tol} if approximate else {}
        spec = NumericSpec(answer=float(found[0]), **tolerance)
        kind = VerifierKind.NUMERIC
    else:
        spec = ExactSpec(answer=answer)
        kind = VerifierKind.EXACT
    return Task(
        prompt_id=prompt_id,
        prompt=messages[: first_user + 1],
        verifier_kind=kind,
        verifier_spec=spec_json(spec),
        reference=reference,
        source=source,
        source_id=record_id,
        license=row.get("license"),
    )


def check_task(task: Task) -> tuple[Task, Rejection | None, float]:
    """Prove a task's verifier: it parses, passes the reference and fails an empty answer.

    Returns the task, its rejection (``None`` when proven) and the seconds the reference
    took to verify.
    """

    def refuse(reason: str, detail: str) -> Rejection:
        return Rejection(
            task.prompt_id, reason, detail, task.verifier_kind, task.verifier_spec,
            task.source, task.source_id,
        )  # fmt: skip

    try:
        verifier = parse_verifier(task.verifier_kind, task.verifier_spec, prompt_id=task.prompt_id)
    except VerifierSpecError as exc:
        return task, refuse(RejectReason.INVALID_SPEC, exc.problem), 0.0
    started = time.monotonic()
    on_reference = verifier.verify(task.reference)
    seconds = time.monotonic() - started
    if not on_reference.passed:
        return task, refuse(RejectReason.REFERENCE_FAILS, on_reference.why), seconds
    on_empty = verifier.verify("")
    if on_empty.passed:
        return task, refuse(RejectReason.EMPTY_PASSES, on_empty.why), seconds
    return task, None, seconds


def check_tasks(
    tasks: Sequence[Task], workers: int | None = None
) -> list[tuple[Task, Rejection | None, float]]:
    """:func:`check_task` on every task, ``workers`` at a time, in the tasks' order."""
    # A sandbox run is mostly process start-up and namespace set-up and teardown, waits
    # that leave a core idle: on 2 cores, 4 threads checked the 823 sample tasks (164 of
    # them sandboxed) in 10.6 s, 2 threads in 14.5 s.
    workers = workers or 2 * (os.cpu_count() or 1)
    if workers == 1:
        return [check_task(task) for task in tasks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rl-verify") as pool:
        return list(pool.map(check_task, tasks))


def _rows_table(tasks: Iterable[Task]) -> pa.Table:
    # No timings in the rows: the same inputs must give the same bytes.
    rows = [
        {
            "prompt_id": task.prompt_id,
            "prompt": task.prompt,
            "verifier_kind": task.verifier_kind,
            "verifier_spec": task.verifier_spec,
            "reference": task.reference,
            "source": task.source,
            "source_id": task.source_id,
            "license": task.license,
        }
        for task in sorted(tasks, key=lambda task: task.prompt_id)
    ]
    return pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS)


def _rejections_table(rejections: Iterable[Rejection]) -> pa.Table:
    rows = [vars(r) for r in sorted(rejections, key=lambda r: r.prompt_id)]
    return pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS_REJECTIONS)


def collect_tasks(
    warehouse: Warehouse, config: RlPromptsConfig, inputs: dict[str, int | None]
) -> tuple[list[Task], list[Rejection]]:
    """Every candidate task from the pinned input snapshots, and those refused on sight."""
    tasks: list[Task] = []
    rejections: list[Rejection] = []
    if config.humaneval and inputs.get(HUMANEVAL_TABLE) is not None:
        problems = warehouse.read(HUMANEVAL_TABLE, snapshot_id=inputs[HUMANEVAL_TABLE])
        tasks.extend(humaneval_tasks(problems, config.timeout_s))
    if config.math_sources and inputs.get(SILVER) is not None:
        conversations = warehouse.read(
            SILVER,
            columns=("record_id", "messages", "source", "license"),
            snapshot_id=inputs[SILVER],
        )
        wanted = pc.is_in(conversations["source"], pa.array(config.math_sources, pa.string()))
        for row in conversations.filter(pc.fill_null(wanted, False)).to_pylist():
            made = math_task(row, config)
            (tasks if isinstance(made, Task) else rejections).append(made)  # type: ignore[arg-type]
    return tasks, rejections


def build_rl_prompts(
    warehouse: Warehouse, config: RlPromptsConfig | None = None, workers: int | None = None
) -> RlPromptsReport:
    """Overwrite ``gold.rl_prompts`` (and its rejections) from the pinned input snapshots.

    Args:
        warehouse: the :class:`~posttrain.platform.warehouse.Warehouse` to read and write.
        config: which seeds, and the sandbox timeout.
        workers: verifier checks run at once (default: twice the machine's CPUs).
    """
    config = config or RlPromptsConfig()
    started = time.monotonic()
    inputs: dict[str, int | None] = {
        HUMANEVAL_TABLE: warehouse.snapshot_id(HUMANEVAL_TABLE),
        SILVER: warehouse.snapshot_id(SILVER),
    }
    tasks, rejections = collect_tasks(warehouse, config, inputs)
    check_started = time.monotonic()
    checked = check_tasks(tasks, workers)
    check_seconds = time.monotonic() - check_started
    kept = [task for task, rejection, _ in checked if rejection is None]
    slowest = max((seconds for _, _, seconds in checked), default=0.0)
    rejections += [rejection for _, rejection, _ in checked if rejection is not None]
    lineage = Lineage(RL_PROMPTS, inputs, config.config_hash())
    snapshot_id = warehouse.overwrite(RL_PROMPTS, _rows_table(kept), lineage)
    rejections_snapshot_id = warehouse.overwrite(
        RL_REJECTIONS,
        _rejections_table(rejections),
        Lineage(RL_REJECTIONS, inputs, lineage.config_hash),
    )
    return RlPromptsReport(
        tasks=len(kept),
        rejections=sorted(rejections, key=lambda r: r.prompt_id),
        kinds=dict(sorted(Counter(str(task.verifier_kind) for task in kept).items())),
        candidates_by_kind=dict(sorted(Counter(str(task.verifier_kind) for task in tasks).items())),
        seconds=time.monotonic() - started,
        check_seconds=check_seconds,
        slowest_reference_seconds=slowest,
        snapshot_id=snapshot_id,
        rejections_snapshot_id=rejections_snapshot_id,
        inputs=inputs,
    )
