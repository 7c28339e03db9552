"""Rollouts re-enter: ingest, scoring, rejection sampling into gold.sft, DPO pairs by gap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from posttrain.platform import checks
from posttrain.platform.evals import load_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.build import build_gold_sft
from posttrain.platform.ingest import SourceSpec, ingest
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.preference import PreferenceConfig
from posttrain.platform.preference import checks as pref_checks
from posttrain.platform.preference.build import build_dpo, build_preferences
from posttrain.platform.rl.rollouts import RolloutConfig, RolloutReport, build_rollouts
from posttrain.platform.rl.verifiers import NumericSpec, spec_json
from posttrain.platform.schemas import GOLD_RL_PROMPTS, SILVER_PREFERENCES, TableName
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse

QUESTIONS = {
    "math:mean": ("What is the mean of 60, 83, 58 and 56?", 64.25),
    "math:sum": ("A crate holds 17 apples and another 25. How many apples in all?", 42.0),
}


def _answer(value: float, steps: str = "Add them and divide where needed") -> str:
    return f"{steps}, step by step.\n\n**Answer:** {value:g}"


def _rl_prompts(warehouse: Warehouse) -> None:
    rows = [
        {
            "prompt_id": prompt_id,
            "prompt": [make_message("user", question)],
            "verifier_kind": "numeric",
            "verifier_spec": spec_json(NumericSpec(answer=answer)),
            "reference": _answer(answer),
            "source": "math-tutor",
            "source_id": prompt_id,
            "license": "CC-BY-4.0",
        }
        for prompt_id, (question, answer) in QUESTIONS.items()
    ]
    warehouse.overwrite(
        TableName.GOLD_RL_PROMPTS, pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS), Lineage("t")
    )


def _rollout(prompt_id: str, completion: Any, reward: Any = None, **extra: Any) -> dict[str, Any]:
    record = {
        "prompt_id": prompt_id,
        "completion": completion,
        "checkpoint": extra.pop("checkpoint", "policy-step-100"),
        "sampling": {"temperature": 0.8, "seed": len(str(completion))},
        **extra,
    }
    if reward is not None:
        record["reward"] = reward
    return record


def _ingest(warehouse: Warehouse, tmp_path: Path, lines: list[Any]) -> None:
    path = tmp_path / "rollouts.jsonl"
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")
    report = ingest(warehouse, [SourceSpec(path=path, source="rl-rollouts", workspace="rl")])
    assert {file.format.value for file in report.files} == {"rollout"}


def _build(warehouse: Warehouse, **config: Any) -> RolloutReport:
    return build_rollouts(warehouse, RolloutConfig(**config), InProcessExecutor())


def _rows(warehouse: Warehouse, table: str) -> list[dict[str, Any]]:
    return warehouse.read(table).to_pylist()


def _by_line(warehouse: Warehouse, table: str) -> dict[int, dict[str, Any]]:
    return {row["row_index"]: row for row in _rows(warehouse, table)}


@pytest.fixture
def prompts(warehouse: Warehouse) -> Warehouse:
    """gold.rl_prompts with two math prompts, and eval.humaneval (its first problem) to
    decontaminate against, as silver does."""
    _rl_prompts(warehouse)
    warehouse.overwrite(TableName.EVAL_HUMANEVAL, _leaked_problem(), Lineage("t"))
    return warehouse


def _leaked_problem() -> pa.Table:
    return load_humaneval().slice(0, 1)


def _leaked_text() -> str:
    problem = _leaked_problem().to_pylist()[0]
    return str(problem["prompt"] + problem["canonical_solution"])


def test_a_rollout_without_a_reward_is_scored_by_its_prompts_verifier(
    prompts: Warehouse, tmp_path: Path
) -> None:
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25)),
            _rollout("math:mean", _answer(70)),
            _rollout("math:sum", _answer(42), reward=0.75),
        ],
    )
    report = _build(prompts)

    rows = _by_line(prompts, TableName.SILVER_ROLLOUTS)
    assert [(rows[i]["reward"], rows[i]["reward_source"]) for i in (1, 2, 3)] == [
        (1.0, "verifier:numeric"),
        (0.0, "verifier:numeric"),
        (0.75, "given"),
    ]
    assert json.loads(rows[1]["sampling"])["temperature"] == 0.8
    assert rows[1]["messages"][0]["content"] == QUESTIONS["math:mean"][0]
    assert report.reward_sources == {"given": 1, "verifier:numeric": 2}
    assert sum(report.reward_histogram.values()) == 3


def test_bad_rollouts_are_rejections_with_reasons_not_a_failed_run(
    prompts: Warehouse, tmp_path: Path
) -> None:
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25), reward=1.0),
            {"prompt_id": "math:mean", "completion": _answer(1)},  # no checkpoint
            _rollout("math:mean", _answer(2), reward="high"),
            _rollout("math:mean", _answer(3), reward=float("nan")),
            _rollout("math:mean", _answer(4), reward=True),
            _rollout("math:nope", _answer(5), reward=1.0),
            _rollout("math:nope", _answer(6)),
            '{"prompt_id": "math:mean", "completion": "cut off',
            _rollout("math:sum", 42, reward=1.0),
        ],
    )
    report = _build(prompts)

    refused = _by_line(prompts, TableName.SILVER_ROLLOUT_REJECTIONS)
    assert {line: row["reason"] for line, row in refused.items()} == {
        2: "missing_field",
        3: "invalid_reward",
        4: "invalid_reward",
        5: "invalid_reward",
        6: "unknown_prompt",
        7: "unknown_prompt",
        8: "malformed",
        9: "missing_field",
    }
    assert "'checkpoint'" in refused[2]["detail"]
    assert '"high"' in refused[3]["detail"]
    assert "math:nope" in refused[6]["detail"]
    assert report.valid == 1
    assert report.rejected_by_reason["invalid_reward"] == 3
    assert checks.rollouts_conserved(prompts).passed


def test_rejection_sampling_keeps_rollouts_at_or_above_the_threshold(
    prompts: Warehouse, tmp_path: Path
) -> None:
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25, "Sum 257, divide by 4"), reward=1.0),
            _rollout("math:mean", _answer(64, "Roughly"), reward=0.5),
            _rollout("math:sum", _answer(42, "Add 17 and 25"), checkpoint="policy-step-200"),
        ],
    )
    report = _build(prompts, sft_min_reward=0.9)

    rows = _by_line(prompts, TableName.SILVER_ROLLOUTS)
    assert [rows[i]["sft_status"] for i in (1, 2, 3)] == ["kept", "below_threshold", "kept"]
    assert report.sft_rows == 2
    build_silver(prompts, SilverConfig(), InProcessExecutor())
    build_gold_sft(prompts)
    gold = {row["record_id"]: row for row in _rows(prompts, TableName.GOLD_SFT)}
    assert gold[rows[3]["record_id"]]["checkpoint"] == "policy-step-200"
    assert gold[rows[1]["record_id"]]["messages"][-1]["role"] == "assistant"
    assert rows[2]["record_id"] not in gold
    assert checks.sft_records(prompts).passed


def test_sft_rows_from_rollouts_pass_dedup_and_decontamination(
    prompts: Warehouse, tmp_path: Path
) -> None:
    leaked = _leaked_text()
    same = _answer(64.25, "Sum 257, divide by 4")
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", same, reward=1.0),
            _rollout("math:mean", same, reward=1.0, checkpoint="policy-step-200"),
            _rollout("math:sum", leaked + "\n\n**Answer:** 42", reward=1.0),
        ],
    )
    report = _build(prompts)

    rows = _by_line(prompts, TableName.SILVER_ROLLOUTS)
    assert rows[1]["sft_status"] == "kept"
    assert rows[2]["sft_status"] == "exact_dup"
    assert rows[2]["kept_record_id"] == rows[1]["record_id"]
    assert rows[3]["sft_status"] == "contaminated"
    assert report.sft_status == {"contaminated": 1, "exact_dup": 1, "kept": 1}


def test_an_sft_rollout_that_duplicates_a_silver_conversation_is_refused(
    prompts: Warehouse, tmp_path: Path
) -> None:
    question, answer = QUESTIONS["math:sum"]
    completion = _answer(answer, "Add 17 and 25")
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"prompt": question, "completion": completion}) + "\n")
    ingest(prompts, [SourceSpec(path=chat, source="chats")])
    build_silver(prompts, SilverConfig(), InProcessExecutor())
    _ingest(prompts, tmp_path, [_rollout("math:sum", completion, reward=1.0)])

    _build(prompts)

    (row,) = _rows(prompts, TableName.SILVER_ROLLOUTS)
    assert row["sft_status"] == "exact_dup"
    assert (
        row["kept_record_id"]
        in prompts.column(TableName.SILVER_CONVERSATIONS, "record_id").to_pylist()
    )


def test_dpo_pairs_join_rollouts_of_one_prompt_with_a_reward_gap(
    prompts: Warehouse, tmp_path: Path
) -> None:
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25, "Sum 257, divide by 4"), reward=1.0),
            _rollout("math:mean", _answer(60, "Guess"), reward=0.0, checkpoint="policy-step-50"),
            _rollout("math:mean", _answer(64, "Close"), reward=0.8),
            _rollout("math:sum", _answer(42, "Add 17 and 25"), reward=1.0),
            _rollout("math:sum", _answer(41, "Add 17 and 24"), reward=0.7),  # gap 0.3 < 0.5
        ],
    )
    report = _build(prompts, dpo_min_gap=0.5)

    lines = {
        row["record_id"]: line for line, row in _by_line(prompts, TableName.SILVER_ROLLOUTS).items()
    }
    (pair,) = _rows(prompts, TableName.SILVER_PREFERENCES)
    assert (lines[pair["chosen_record_id"]], lines[pair["rejected_record_id"]]) == (1, 2)
    assert pair["margin"] == 1.0
    assert pair["origin"] == "rollouts"
    assert pair["pairing_rule"] == "best_vs_worst(gap>=0.5)"
    assert (pair["chosen_checkpoint"], pair["rejected_checkpoint"]) == (
        "policy-step-100",
        "policy-step-50",
    )
    assert [m["role"] for m in pair["prompt"]] == ["user"]
    assert pair["chosen"][0]["content"].endswith("64.25")
    assert pair["source"] == "rl-rollouts"
    assert report.pairs == 1

    all_pairs = _build(prompts, dpo_min_gap=0.5, pairing_rule="all_pairs")
    assert all_pairs.pairs == 2  # 1.0 vs 0.0 and 0.8 vs 0.0


def test_a_contaminated_rollout_is_never_a_side_of_a_pair(
    prompts: Warehouse, tmp_path: Path
) -> None:
    leaked = _leaked_text()
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", leaked + "\n**Answer:** 64.25", reward=1.0),
            _rollout("math:mean", _answer(60, "Guess"), reward=0.0),
        ],
    )
    assert _build(prompts).pairs == 0
    assert _rows(prompts, TableName.SILVER_PREFERENCES) == []


def test_silver_leaves_rollouts_to_the_rollout_tables(prompts: Warehouse, tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"prompt": "What is 3 + 4?", "completion": "3 + 4 = 7."}) + "\n")
    ingest(prompts, [SourceSpec(path=chat, source="chats")])
    _ingest(prompts, tmp_path, [_rollout("math:sum", _answer(42), reward=1.0)])

    report = build_silver(prompts, SilverConfig(), InProcessExecutor())
    _build(prompts)

    assert report.rows_in == 1
    assert checks.rows_conserved(prompts).passed
    assert checks.rollouts_conserved(prompts).passed


def test_the_same_rollouts_give_the_same_tables(prompts: Warehouse, tmp_path: Path) -> None:
    _ingest(
        prompts,
        tmp_path,
        [_rollout("math:mean", _answer(v, f"Try {v}"), reward=v / 100) for v in (64.25, 10, 50)],
    )
    _build(prompts)
    first = {t: prompts.read(t) for t in (TableName.SILVER_ROLLOUTS, TableName.SILVER_PREFERENCES)}
    _build(prompts)
    for table, rows in first.items():
        assert prompts.read(table).equals(rows)
    assert pc.sum(first[TableName.SILVER_ROLLOUTS]["reward"]).as_py() == pytest.approx(1.2425)


def test_rollout_pairs_reach_gold_dpo_with_their_checkpoints(
    prompts: Warehouse, tmp_path: Path
) -> None:
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25, "Sum 257, divide by 4"), reward=1.0),
            _rollout("math:mean", _answer(60, "Guess"), reward=0.0, checkpoint="policy-step-50"),
        ],
    )
    _build(prompts)
    # The preference build (nothing of its own to pair) leaves the rollout pairs alone.
    build_preferences(prompts, PreferenceConfig(), InProcessExecutor())
    report = build_dpo(prompts)

    (pair,) = _rows(prompts, TableName.GOLD_DPO)
    assert report.rows == 1
    assert pair["origin"] == "rollouts"
    assert (pair["chosen_checkpoint"], pair["rejected_checkpoint"]) == (
        "policy-step-100",
        "policy-step-50",
    )
    at = {TableName.GOLD_DPO: report.snapshot_id}
    assert pref_checks.sides_differ(prompts, TableName.GOLD_DPO, at).passed
    decontam = PreferenceConfig().decontam
    assert pref_checks.prompts_clean(prompts, TableName.GOLD_DPO, decontam, at).passed


def test_a_rollouts_rebuild_replaces_only_the_rollout_pairs(
    prompts: Warehouse, tmp_path: Path
) -> None:
    other = {name: None for name in SILVER_PREFERENCES.names} | {
        "pair_id": "format-pair",
        "origin": "format",
    }
    prompts.append(
        TableName.SILVER_PREFERENCES,
        pa.Table.from_pylist([other], SILVER_PREFERENCES),
        Lineage("t"),
    )
    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25, "Sum 257, divide by 4"), reward=1.0),
            _rollout("math:mean", _answer(60, "Guess"), reward=0.0),
        ],
    )
    _build(prompts)
    _build(prompts, dpo_min_gap=2.0)  # no gap is large enough now: no rollout pair

    assert prompts.column(TableName.SILVER_PREFERENCES, "pair_id").to_pylist() == ["format-pair"]


def test_doctor_counts_kept_rollouts_in_gold_and_no_rollout_as_pending(
    prompts: Warehouse, tmp_path: Path
) -> None:
    from posttrain.platform.doctor import diagnose

    _ingest(
        prompts,
        tmp_path,
        [
            _rollout("math:mean", _answer(64.25, "Sum 257, divide by 4"), reward=1.0),
            _rollout("math:sum", _answer(42, "Add 17 and 25"), reward=0.2),
        ],
    )
    _build(prompts, sft_min_reward=0.9)
    build_silver(prompts, SilverConfig(), InProcessExecutor())
    build_gold_sft(prompts)

    diagnosis = diagnose(prompts)

    assert diagnosis.findings == []
    assert diagnosis.pending == 0
