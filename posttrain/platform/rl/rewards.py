"""Score completions against ``gold.rl_prompts``: one prompt from the CLI, or TRL's batches.

:func:`reward_function` returns what TRL's ``GRPOTrainer`` takes as ``reward_funcs``: a
function ``(prompts, completions, **kwargs) -> list[float]``. TRL passes every dataset
column other than ``prompt`` through ``kwargs``, so the ``prompt_id`` column of the table
names the verifier of each completion.

Example:
    >>> from trl import GRPOTrainer  # doctest: +SKIP
    >>> dataset = rl_dataset(warehouse)  # doctest: +SKIP
    >>> GRPOTrainer(model, reward_funcs=reward_function(warehouse), train_dataset=dataset)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.errors import PosttrainError
from posttrain.platform.rl.verifiers import Verifier, VerifierResult, parse_verifier
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

RL_PROMPTS = TableName.GOLD_RL_PROMPTS

RewardFunction = Callable[..., list[float]]


class UnknownPromptError(PosttrainError):
    """A prompt id is not in the table of RL prompts."""

    def __init__(self, prompt_id: str, table: str) -> None:
        self.prompt_id = prompt_id
        super().__init__(f"prompt id {prompt_id!r} is not in {table}")


class Verifiers:
    """The verifiers of a table of RL prompts, parsed once each, on first use."""

    def __init__(self, rows: pa.Table, table: str) -> None:
        self.table = table
        self._specs = {
            row["prompt_id"]: (row["verifier_kind"], row["verifier_spec"])
            for row in rows.select(["prompt_id", "verifier_kind", "verifier_spec"]).to_pylist()
        }
        self._parsed: dict[str, Verifier] = {}

    @classmethod
    def load(
        cls, warehouse: Warehouse, table: str = RL_PROMPTS, snapshot_id: int | None = None
    ) -> Verifiers:
        """Read the verifiers of ``table`` (at ``snapshot_id``, default the current one)."""
        columns = ("prompt_id", "verifier_kind", "verifier_spec")
        return cls(warehouse.read(table, columns=columns, snapshot_id=snapshot_id), table)

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, prompt_id: str) -> Verifier:
        """The verifier of ``prompt_id``.

        Raises:
            UnknownPromptError: no such prompt in the table.
            VerifierSpecError: its spec does not parse.
        """
        if prompt_id not in self._parsed:
            if prompt_id not in self._specs:
                raise UnknownPromptError(prompt_id, self.table)
            kind, spec = self._specs[prompt_id]
            self._parsed[prompt_id] = parse_verifier(kind, spec, prompt_id=prompt_id)
        return self._parsed[prompt_id]

    def verify(self, prompt_id: str, completion: str) -> VerifierResult:
        """Score one completion of ``prompt_id``."""
        return self.get(prompt_id).verify(completion)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of a completion: a string (standard format) or messages (conversational,
    where the assistant's turns are what the policy wrote)."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role", "assistant") == "assistant"]
    return "\n".join(str(m.get("content") or "") for m in turns)


def reward_function(
    warehouse: Warehouse,
    table: str = RL_PROMPTS,
    *,
    snapshot_id: int | None = None,
    workers: int | None = None,
) -> RewardFunction:
    """A TRL reward function scoring each completion with its prompt's verifier.

    Args:
        warehouse: where ``table`` lives.
        table: a table with ``prompt_id``, ``verifier_kind`` and ``verifier_spec`` columns.
        snapshot_id: pin the verifiers to this snapshot (default: the current one).
        workers: completions verified at once; sandboxed tests run in parallel processes.

    The returned function raises :class:`UnknownPromptError` for a prompt id not in the
    table, and a ``PosttrainError`` when the dataset has no ``prompt_id`` column: a
    silent zero reward would train the policy on noise.
    """
    verifiers = Verifiers.load(warehouse, table, snapshot_id)
    workers = workers or os.cpu_count() or 1

    def posttrain_verifier(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        prompt_ids = kwargs.get("prompt_id")
        if prompt_ids is None:
            raise PosttrainError(
                f"the reward function needs the prompt_id column of {table} in the dataset "
                "(TRL passes dataset columns to reward functions as keyword arguments)"
            )
        if len(prompt_ids) != len(completions):
            raise PosttrainError(f"{len(prompt_ids)} prompt ids for {len(completions)} completions")
        texts = [completion_text(completion) for completion in completions]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(verifiers.verify, prompt_ids, texts))
        return [result.reward for result in results]

    return posttrain_verifier


def verify_completion(
    warehouse: Warehouse, prompt_id: str, completion: str, table: str = RL_PROMPTS
) -> VerifierResult:
    """Score one completion of ``prompt_id`` (what ``posttrain verify`` prints)."""
    columns = ("prompt_id", "verifier_kind", "verifier_spec")
    only = EqualTo(term=Reference("prompt_id"), value=literal(prompt_id))
    rows = warehouse.read(table, columns=columns, row_filter=only)
    return Verifiers(rows, table).verify(prompt_id, completion)
