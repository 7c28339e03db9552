"""Rollouts re-enter: RL transcripts → scored rollouts → SFT rows and DPO pairs.

A rollout record (bronze ``format = rollout``, see
:mod:`posttrain.platform.ingest.formats`) is one completion a policy wrote for a prompt of
``gold.rl_prompts``::

    {"prompt_id": "math-tutor:3f2a…", "completion": "… **Answer:** 74",
     "checkpoint": "policy-step-200", "reward": 1.0,
     "sampling": {"temperature": 0.8, "top_p": 0.95, "seed": 3}}

``reward`` may be left out (or ``null``): the rollout is then scored with its prompt's
verifier from ``gold.rl_prompts`` (pinned to the snapshot read). ``prompt`` (a string or
messages) is optional; by default the prompt is the one of ``gold.rl_prompts``.

:func:`build_rollouts` writes three tables, all rebuilt from every bronze rollout:

* ``silver.rollouts``: each valid rollout as a conversation (prompt + completion, redacted),
  its reward and where it came from (given or which verifier), the checkpoint, the
  sampling settings, and what rejection sampling decided (``sft_status``);
* ``silver.rollout_rejections``: rollouts that could not be used, with the reason
  (``missing_field``, ``invalid_reward``, ``unknown_prompt``, ``malformed``,
  ``stage_error``): every bronze rollout is in exactly one of these two tables;
* ``silver.preferences`` (only its rows with ``origin = "rollouts"``; the preference build
  owns the others): DPO pairs of rollouts of one prompt whose rewards differ by at least
  ``dpo_min_gap``, with the checkpoint of each side; ``gold.dpo`` takes them from there.

Rejection sampling: a rollout whose reward is at least ``sft_min_reward`` becomes an SFT
row (``sft_status = kept``) if it passes silver's own quality filters, redaction,
decontamination and deduplication (against itself and against ``silver.conversations``);
``gold.sft`` then takes it beside the silver conversations, with its checkpoint. Otherwise
``sft_status`` names why not (``below_threshold``, ``near_dup``, ``contaminated``, ...).
A pair is formed only from rollouts that passed quality and decontamination.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.decontam import DecontamStep, index_from_warehouse
from posttrain.platform.dedup import PublishedIndex, deduplicate
from posttrain.platform.errors import PosttrainError, RecordError
from posttrain.platform.execution import Executor
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import Message, make_message
from posttrain.platform.preference.build import is_in
from posttrain.platform.rl.rewards import UnknownPromptError, Verifiers, completion_text
from posttrain.platform.schemas import (
    MESSAGES_TYPE,
    PROVENANCE_FIELDS,
    SILVER_PREFERENCES,
    SILVER_REJECTIONS,
    SILVER_ROLLOUTS,
    RejectionReason,
    TableName,
)
from posttrain.platform.silver.parse import decode_record, malformed, parse_openai_message
from posttrain.platform.silver.pipeline import SilverConfig
from posttrain.platform.silver.quality import QualityStep
from posttrain.platform.silver.redact import RedactStep
from posttrain.platform.steps import Chain, StepResult, as_table, rejection_rows, run_stages
from posttrain.platform.warehouse import Warehouse

BRONZE = TableName.BRONZE_RECORDS
RL_PROMPTS = TableName.GOLD_RL_PROMPTS
CONVERSATIONS = TableName.SILVER_CONVERSATIONS
ROLLOUTS = TableName.SILVER_ROLLOUTS
ROLLOUT_REJECTIONS = TableName.SILVER_ROLLOUT_REJECTIONS
PREFERENCES = TableName.SILVER_PREFERENCES
ORIGIN = "rollouts"  # the silver.preferences origin this build writes and replaces
KEPT = "kept"
BELOW_THRESHOLD = "below_threshold"
# Rewards in the histogram of the asset metadata: [0, 0.1), ..., [0.9, 1.0], and outside.
HISTOGRAM_BINS = 10


class RolloutConfig(FrozenConfig):
    """How rollouts become SFT rows and DPO pairs; its hash is stamped on the snapshots."""

    sft_min_reward: float = Field(
        default=1.0, description="Rejection sampling: lowest reward an SFT row may have."
    )
    dpo_min_gap: float = Field(
        default=0.5, gt=0, description="Smallest reward gap between chosen and rejected."
    )
    pairing_rule: Literal["best_vs_worst", "all_pairs"] = Field(
        default="best_vs_worst",
        description="best_vs_worst: one pair per prompt (highest vs lowest reward); "
        "all_pairs: every two rollouts of a prompt whose gap is large enough.",
    )
    silver: SilverConfig = Field(
        default_factory=SilverConfig,
        description="Quality, redaction, decontamination and dedup rules: silver's own.",
    )

    def rule_name(self) -> str:
        """The pairing rule as recorded on each pair, e.g. ``best_vs_worst(gap>=0.5)``."""
        return f"{self.pairing_rule}(gap>={self.dpo_min_gap:g})"


@dataclass(frozen=True)
class RolloutReport:
    """What one build did, for asset metadata and logs."""

    rollouts_in: int
    valid: int
    rejected_by_reason: dict[str, int]  # rollouts refused (silver.rollout_rejections)
    sft_status: dict[str, int]  # valid rollouts by what rejection sampling decided
    sft_rows: int
    pairs: int
    pairs_refused: dict[str, int]
    reward_sources: dict[str, int]
    reward_histogram: dict[str, int]
    rewards_by_checkpoint: dict[str, float]  # mean reward per checkpoint
    snapshot_ids: dict[str, int | None]
    inputs: dict[str, int | None]
    seconds: float


# -- parsing one rollout ---------------------------------------------------------------


def _reason(code: str, detail: str) -> RecordError:
    return RecordError(code, detail)


def _required_string(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        raise _reason(
            RejectionReason.MISSING_FIELD,
            f"rollout has no {key!r} (keys: {', '.join(sorted(record)[:8])})",
        )
    if not isinstance(value, str) or not value.strip():
        raise _reason(
            RejectionReason.MISSING_FIELD,
            f"rollout {key!r} must be a non-empty string, found {json.dumps(value)[:60]}",
        )
    return value


def _reward(record: Mapping[str, Any]) -> float | None:
    """The given reward: ``reward``, else a verifier result's reward or pass; ``None`` when
    the rollout carries none (it is then scored)."""
    value: Any = record.get("reward")
    if value is None and isinstance(record.get("verifier_result"), Mapping):
        result = record["verifier_result"]
        value = result.get("reward", result.get("passed"))
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _reason(
            RejectionReason.INVALID_REWARD,
            f"reward must be a finite number, found {json.dumps(value)[:60]}",
        )
    return float(value)


def _completion(record: Mapping[str, Any]) -> Message:
    value = record.get("completion")
    if isinstance(value, str):
        return make_message("assistant", value)
    if isinstance(value, list):
        turns = [
            parse_openai_message(raw, f"completion message {i}") for i, raw in enumerate(value)
        ]
        return make_message("assistant", completion_text([dict(turn) for turn in turns]))
    raise _reason(
        RejectionReason.MISSING_FIELD,
        f"rollout 'completion' must be a string or messages, found {json.dumps(value)[:60]}",
    )


def _prompt(record: Mapping[str, Any]) -> list[Message] | None:
    value = record.get("prompt")
    if value is None:
        return None
    if isinstance(value, str):
        return [make_message("user", value)]
    if isinstance(value, list):
        return [parse_openai_message(raw, f"prompt message {i}") for i, raw in enumerate(value)]
    raise malformed(f"rollout 'prompt' must be a string or messages, found {type(value).__name__}")


def _sampling(record: Mapping[str, Any]) -> str | None:
    value = record.get("sampling")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise malformed(f"rollout 'sampling' must be an object, found {type(value).__name__}")
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class ScoreStep:
    """Bronze rollout rows → scored rollout conversations (a stage of the one contract).

    Keeps ``record_id``, ``messages`` (prompt + completion), ``prompt_id``, ``checkpoint``,
    ``reward``, ``reward_source``, ``sampling`` and the provenance columns; refuses a row
    with a missing field, a reward that is not a number, or an unknown prompt id.
    """

    prompts: dict[str, list[Message]]
    verifiers: Verifiers
    name: ClassVar[str] = "score-rollouts"

    def _row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        payload = row.get("payload")
        if payload is None:
            raise malformed("bronze row has no UTF-8 payload")
        record = decode_record(payload)
        prompt_id = _required_string(record, "prompt_id")
        completion = _completion(record)
        checkpoint = _required_string(record, "checkpoint")
        reward = _reward(record)
        sampling = _sampling(record)
        prompt = _prompt(record)
        if prompt_id not in self.prompts:
            raise _reason(
                RejectionReason.UNKNOWN_PROMPT, f"prompt id {prompt_id!r} is not in {RL_PROMPTS}"
            )
        source = "given"
        if reward is None:
            try:
                result = self.verifiers.verify(prompt_id, completion["content"])
            except (UnknownPromptError, PosttrainError) as error:
                raise _reason(RejectionReason.UNKNOWN_PROMPT, str(error)) from None
            reward = result.reward
            source = f"verifier:{self.verifiers.get(prompt_id).kind}"
        return {
            "messages": [*(prompt or self.prompts[prompt_id]), completion],
            "prompt_id": prompt_id,
            "checkpoint": checkpoint,
            "reward": reward,
            "reward_source": source,
            "sampling": sampling,
        }

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        keep: list[bool] = []
        scored: list[dict[str, Any]] = []
        refused: list[tuple[Mapping[str, Any], RecordError]] = []
        for row in table.to_pylist():
            try:
                scored.append(self._row(row))
                keep.append(True)
            except RecordError as error:
                refused.append((row, error))
                keep.append(False)
        kept = table.filter(pa.array(keep, pa.bool_())) if refused else table
        provenance = [f.name for f in PROVENANCE_FIELDS]
        columns = {
            "record_id": kept["record_id"],
            "messages": pa.array([s["messages"] for s in scored], MESSAGES_TYPE),
            **{name: pa.array([s[name] for s in scored], pa.string()) for name in _SCORED_TEXT},
            "reward": pa.array([s["reward"] for s in scored], pa.float64()),
            **{name: kept[name] for name in provenance},
            "row_index": kept["row_index"],
        }
        return StepResult(kept=pa.table(columns), rejected=rejection_rows(refused))


_SCORED_TEXT = ("prompt_id", "checkpoint", "reward_source", "sampling")


# -- the build ---------------------------------------------------------------------------


def _bronze_rollouts(warehouse: Warehouse, snapshot_id: int | None) -> pa.Table:
    if snapshot_id is None:
        return pa.table({})
    only = f"format == '{ChatFormat.ROLLOUT.value}'"
    return warehouse.read(BRONZE, row_filter=only, snapshot_id=snapshot_id)


def _prompts(warehouse: Warehouse, snapshot_id: int | None) -> tuple[dict[str, Any], Verifiers]:
    if snapshot_id is None:
        empty = pa.table(
            {
                name: pa.array([], pa.string())
                for name in ("prompt_id", "verifier_kind", "verifier_spec")
            }
        )
        return {}, Verifiers(empty, RL_PROMPTS)
    rows = warehouse.read(RL_PROMPTS, snapshot_id=snapshot_id)
    prompts = dict(zip(rows["prompt_id"].to_pylist(), rows["prompt"].to_pylist(), strict=True))
    return prompts, Verifiers(rows, RL_PROMPTS)


def _histogram(rewards: list[float]) -> dict[str, int]:
    bins: Counter[str] = Counter()
    for reward in rewards:
        if reward < 0 or reward > 1:
            bins["<0" if reward < 0 else ">1"] += 1
            continue
        low = min(int(reward * HISTOGRAM_BINS), HISTOGRAM_BINS - 1) / HISTOGRAM_BINS
        bins[f"[{low:.1f},{low + 1 / HISTOGRAM_BINS:.1f}{']' if low >= 0.9 else ')'}"] += 1
    return dict(sorted(bins.items()))


def _sft_status(
    scored: pa.Table,
    checked: StepResult,
    config: RolloutConfig,
    warehouse: Warehouse,
    executor: Executor,
    pinned: int | None = None,
) -> tuple[dict[str, tuple[str, str | None, str | None]], pa.Table]:
    """Per record: (status, detail, kept_record_id); and the clean (checked) rows."""
    status: dict[str, tuple[str, str | None, str | None]] = {}
    for row in checked.rejected.select(["record_id", "reason", "detail"]).to_pylist():
        status[row["record_id"]] = (row["reason"], row["detail"], None)
    clean = checked.kept
    above = pc.greater_equal(clean["reward"], config.sft_min_reward)
    for record_id in clean.filter(pc.invert(above))["record_id"].to_pylist():
        status[record_id] = (BELOW_THRESHOLD, f"reward below {config.sft_min_reward:g}", None)
    candidates = clean.filter(above)
    if candidates.num_rows:
        silver_snapshot = warehouse.snapshot_id(CONVERSATIONS) if pinned is None else pinned
        published = (
            PublishedIndex.from_table(
                warehouse.read(
                    CONVERSATIONS,
                    columns=("record_id", "exact_hash", "minhash"),
                    snapshot_id=silver_snapshot,
                ),
                config.silver.dedup,
            )
            if silver_snapshot is not None
            else None
        )
        dedup = deduplicate(
            candidates.select(["record_id", "messages", "source", "batch_id"]),
            config.silver.dedup,
            executor,
            published,
        )
        for row in dedup.rejected.select(
            ["record_id", "reason", "detail", "kept_record_id"]
        ).to_pylist():
            status[row["record_id"]] = (row["reason"], row["detail"], row["kept_record_id"])
    for record_id in candidates["record_id"].to_pylist():
        status.setdefault(record_id, (KEPT, None, None))
    return status, clean


def _text(messages: list[Message]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def derive_pairs(clean: pa.Table, config: RolloutConfig) -> tuple[pa.Table, dict[str, int]]:
    """DPO pairs from clean scored rollouts of one prompt with a large enough reward gap.

    Returns the rows (``silver.preferences``, origin ``rollouts``) sorted by ``pair_id``
    and the count of pairs refused by reason (``chosen_equals_rejected``,
    ``duplicate_pair``).
    """
    by_prompt: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in clean.to_pylist():
        by_prompt[row["prompt_id"]].append(row)
    refused: Counter[str] = Counter()
    pairs: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for prompt_id in sorted(by_prompt):
        rows = sorted(by_prompt[prompt_id], key=lambda r: (-r["reward"], r["record_id"]))
        if config.pairing_rule == "best_vs_worst":
            worst = min(rows, key=lambda r: (r["reward"], r["record_id"]))
            candidates = [(rows[0], worst)]
        else:
            candidates = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
        for chosen, rejected in candidates:
            margin = chosen["reward"] - rejected["reward"]
            if chosen is rejected or margin < config.dpo_min_gap:
                continue
            prompt = chosen["messages"][:-1]
            chosen_turn, rejected_turn = chosen["messages"][-1:], rejected["messages"][-1:]
            if chosen_turn[0]["content"].strip() == rejected_turn[0]["content"].strip():
                refused["chosen_equals_rejected"] += 1
                continue
            pair_id = hashlib.sha256(
                f"{chosen['record_id']}\0{rejected['record_id']}".encode()
            ).hexdigest()[:32]
            content = hashlib.sha256(
                "\0".join(map(_text, (prompt, chosen_turn, rejected_turn))).encode()
            ).hexdigest()
            if content in seen:
                refused["duplicate_pair"] += 1
                continue
            seen[content] = pair_id
            pairs[pair_id] = {
                "pair_id": pair_id,
                "prompt": prompt,
                "chosen": chosen_turn,
                "rejected": rejected_turn,
                "margin": margin,
                "pairing_rule": config.rule_name(),
                "record_id": chosen["record_id"],
                "row_index": chosen.get("row_index"),
                "chosen_record_id": chosen["record_id"],
                "rejected_record_id": rejected["record_id"],
                **{f.name: chosen.get(f.name) for f in PROVENANCE_FIELDS},
                "origin": ORIGIN,
                "chosen_checkpoint": chosen["checkpoint"],
                "rejected_checkpoint": rejected["checkpoint"],
            }
    rows = [pairs[pair_id] for pair_id in sorted(pairs)]
    return pa.Table.from_pylist(rows, schema=SILVER_PREFERENCES), dict(refused)


def build_rollouts(
    warehouse: Warehouse, config: RolloutConfig, executor: Executor
) -> RolloutReport:
    """Score every bronze rollout, derive SFT rows and DPO pairs, and write the two rollout
    tables and the ``rollouts`` rows of ``silver.preferences``.

    Reads pinned snapshots of ``bronze.records``, ``gold.rl_prompts`` and the ``eval.*``
    tables; a bad rollout is a rejection row, never a failed run.
    """
    started = time.monotonic()
    bronze_snapshot = warehouse.snapshot_id(BRONZE)
    prompts_snapshot = warehouse.snapshot_id(RL_PROMPTS)
    raw = _bronze_rollouts(warehouse, bronze_snapshot)
    prompts, verifiers = _prompts(warehouse, prompts_snapshot)
    scored = run_stages(ScoreStep(prompts, verifiers), raw, executor) if raw.num_rows else None
    index = index_from_warehouse(warehouse, config.silver.decontam)
    inputs: dict[str, int | None] = {
        BRONZE: bronze_snapshot,
        RL_PROMPTS: prompts_snapshot,
        CONVERSATIONS: warehouse.snapshot_id(CONVERSATIONS),
        **{f"eval.{name}": snapshot for name, snapshot in index.snapshot_ids.items()},
    }
    valid = scored.kept if scored is not None and scored.kept.num_rows else None
    rejections = scored.rejected if scored is not None else SILVER_REJECTIONS.empty_table()
    if valid is not None:
        checked = run_stages(
            Chain(
                (
                    QualityStep(config.silver.quality),
                    RedactStep(config.silver.redaction),
                    DecontamStep(index, config.silver.decontam),
                )
            ),
            valid,
            executor,
            label="rollouts: quality, redact, decontaminate",
        )
        status, clean = _sft_status(
            valid, checked, config, warehouse, executor, inputs[CONVERSATIONS]
        )
        # Store the redacted conversation where the checks produced one.
        redacted = dict(
            zip(clean["record_id"].to_pylist(), clean["messages"].to_pylist(), strict=True)
        )
        rows = valid.to_pylist()
        for row in rows:
            row["messages"] = redacted.get(row["record_id"], row["messages"])
            row["sft_status"], row["sft_detail"], row["kept_record_id"] = status[row["record_id"]]
        rows.sort(key=lambda r: r["record_id"])
        rollouts = pa.Table.from_pylist(rows, schema=SILVER_ROLLOUTS)
        pairs, pairs_refused = derive_pairs(clean, config)
    else:
        rollouts = SILVER_ROLLOUTS.empty_table()
        pairs, pairs_refused = SILVER_PREFERENCES.empty_table(), {}
    rejections = rejections.take(pc.sort_indices(rejections, [("record_id", "ascending")]))
    lineage = Lineage("rollouts", inputs, config.config_hash())
    snapshot_ids: dict[str, int | None] = {
        ROLLOUT_REJECTIONS: warehouse.overwrite(ROLLOUT_REJECTIONS, rejections, lineage),
        ROLLOUTS: warehouse.overwrite(ROLLOUTS, rollouts, lineage),
        # Only the rollout pairs are replaced; the preference build owns the other origins.
        PREFERENCES: warehouse.overwrite(
            PREFERENCES, pairs, lineage, where=is_in("origin", (ORIGIN,))
        ),
    }
    rewards = rollouts["reward"].to_pylist()
    by_checkpoint: defaultdict[str, list[float]] = defaultdict(list)
    for checkpoint, reward in zip(rollouts["checkpoint"].to_pylist(), rewards, strict=True):
        by_checkpoint[checkpoint].append(reward)
    statuses = Counter(rollouts["sft_status"].to_pylist())
    return RolloutReport(
        rollouts_in=raw.num_rows,
        valid=rollouts.num_rows,
        rejected_by_reason=dict(sorted(Counter(rejections["reason"].to_pylist()).items())),
        sft_status=dict(sorted(statuses.items())),
        sft_rows=statuses.get(KEPT, 0),
        pairs=pairs.num_rows,
        pairs_refused=pairs_refused,
        reward_sources=dict(sorted(Counter(rollouts["reward_source"].to_pylist()).items())),
        reward_histogram=_histogram(rewards),
        rewards_by_checkpoint={
            name: round(sum(values) / len(values), 4)
            for name, values in sorted(by_checkpoint.items())
        },
        snapshot_ids=snapshot_ids,
        inputs=inputs,
        seconds=time.monotonic() - started,
    )


def sft_rows(warehouse: Warehouse, snapshot_id: int | None = None) -> pa.Table:
    """The rollouts rejection sampling kept, as ``gold.sft`` rows (with ``checkpoint``)."""
    if not warehouse.exists(ROLLOUTS):
        return pa.table({})
    kept = warehouse.read(
        ROLLOUTS,
        columns=("record_id", "messages", "source", "workspace", "license", "checkpoint"),
        row_filter=f"sft_status == '{KEPT}'",
        snapshot_id=snapshot_id,
    )
    return kept
