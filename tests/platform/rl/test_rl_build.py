"""gold.rl_prompts holds only tasks whose verifier passes its reference; the rest are
rejections with the reason and the verifier's verdict."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform.evals import seed_humaneval
from posttrain.platform.lineage import Lineage, inputs_from_summary
from posttrain.platform.messages import make_message
from posttrain.platform.rl.build import (
    RL_PROMPTS,
    RL_REJECTIONS,
    RlPromptsConfig,
    Task,
    build_rl_prompts,
    check_task,
    math_task,
)
from posttrain.platform.rl.checks import references_pass
from posttrain.platform.rl.verifiers import parse_verifier
from posttrain.platform.schemas import GOLD_RL_PROMPTS, TableName
from posttrain.platform.warehouse import Warehouse

DATA_DIR = Path(__file__).resolve().parents[3] / "data"


def _rows(warehouse: Warehouse, table: str) -> dict[str, dict]:
    return {row["prompt_id"]: row for row in warehouse.read(table).to_pylist()}


def test_humaneval_tasks_pass_their_solution_and_the_wrong_one_is_a_rejection(
    rl_inputs: Warehouse,
) -> None:
    report = build_rl_prompts(rl_inputs, RlPromptsConfig(math_sources=()))
    kept = _rows(rl_inputs, RL_PROMPTS)
    assert sorted(kept) == ["humaneval:HumanEval/0", "humaneval:HumanEval/1"]
    (rejection,) = _rows(rl_inputs, RL_REJECTIONS).values()
    assert rejection["prompt_id"] == "humaneval:HumanEval/2"
    assert rejection["reason"] == "reference_fails"
    assert rejection["detail"].startswith("tests failed: exited 1")
    assert report.reference_pass_rate == 2 / 3


def test_a_humaneval_row_is_a_trl_prompt_with_its_tests_as_verifier(rl_inputs: Warehouse) -> None:
    build_rl_prompts(rl_inputs, RlPromptsConfig(math_sources=()))
    row = _rows(rl_inputs, RL_PROMPTS)["humaneval:HumanEval/0"]
    (message,) = row["prompt"]
    assert message["role"] == "user" and "def has_close_elements" in message["content"]
    spec = json.loads(row["verifier_spec"])
    assert row["verifier_kind"] == "python_tests" and spec["entry_point"] == "has_close_elements"
    verifier = parse_verifier(row["verifier_kind"], row["verifier_spec"], prompt_id="x")
    assert verifier.verify(row["reference"]).passed
    assert not verifier.verify("").passed
    assert (row["source"], row["source_id"]) == ("humaneval", "HumanEval/0")


def test_math_answers_become_numeric_or_exact_verifiers(rl_inputs: Warehouse) -> None:
    build_rl_prompts(rl_inputs, RlPromptsConfig(humaneval=False))
    kept = _rows(rl_inputs, RL_PROMPTS)
    assert sorted(kept) == ["math-tutor:m-mean", "math-tutor:m-speed", "math-tutor:m-time"]
    mean = kept["math-tutor:m-mean"]
    assert mean["verifier_kind"] == "numeric"
    assert json.loads(mean["verifier_spec"])["answer"] == 64.25
    assert [m["role"] for m in mean["prompt"]] == ["system", "user"]
    speed = json.loads(kept["math-tutor:m-speed"]["verifier_spec"])
    assert speed["rel_tol"] == 0.01  # "about": the stated answer is rounded
    assert kept["math-tutor:m-time"]["verifier_kind"] == "exact"


def test_a_math_reply_without_a_final_answer_is_a_rejection(rl_inputs: Warehouse) -> None:
    build_rl_prompts(rl_inputs, RlPromptsConfig(humaneval=False))
    rejection = _rows(rl_inputs, RL_REJECTIONS)["math-tutor:m-none"]
    assert (rejection["reason"], rejection["detail"]) == (
        "no_answer",
        "the reply states no final answer",
    )


def test_a_spec_that_does_not_parse_is_a_rejection_not_a_crash() -> None:
    task = Task(
        "t:1", [make_message("user", "?")], "numeric", '{"answer": "x"}', "1", "t", "1", None
    )
    _, rejection, _ = check_task(task)
    assert rejection is not None and rejection.reason == "invalid_spec"
    assert rejection.detail.startswith("answer:")


def test_a_verifier_that_rewards_an_empty_completion_is_a_rejection() -> None:
    task = Task(
        "t:1", [make_message("user", "?")], "regex", '{"pattern": ".*"}', "x", "t", "1", None
    )
    _, rejection, _ = check_task(task)
    assert rejection is not None and rejection.reason == "empty_passes"


def test_the_snapshot_records_the_input_snapshots_it_read(rl_inputs: Warehouse) -> None:
    build_rl_prompts(rl_inputs, RlPromptsConfig(humaneval=False))
    inputs = inputs_from_summary(rl_inputs.snapshot_summary(RL_PROMPTS))
    assert inputs == {
        TableName.EVAL_HUMANEVAL: rl_inputs.snapshot_id(TableName.EVAL_HUMANEVAL),
        TableName.SILVER_CONVERSATIONS: rl_inputs.snapshot_id(TableName.SILVER_CONVERSATIONS),
    }


def test_the_same_inputs_give_the_same_rows_whatever_the_workers(rl_inputs: Warehouse) -> None:
    build_rl_prompts(rl_inputs, workers=1)
    first = (rl_inputs.read(RL_PROMPTS), rl_inputs.read(RL_REJECTIONS))
    build_rl_prompts(rl_inputs, workers=4)
    assert rl_inputs.read(RL_PROMPTS).equals(first[0])
    assert rl_inputs.read(RL_REJECTIONS).equals(first[1])


def test_the_reference_check_reads_the_verifiers_back_from_the_table(
    rl_inputs: Warehouse,
) -> None:
    snapshot_id = build_rl_prompts(rl_inputs, RlPromptsConfig(humaneval=False)).snapshot_id
    assert references_pass(rl_inputs, snapshot_id).passed
    rows = rl_inputs.read(RL_PROMPTS).to_pylist()
    rows[0]["reference"] = "**Answer:** 1000"
    tampered = rl_inputs.overwrite(
        RL_PROMPTS, pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS), Lineage("test")
    )
    outcome = references_pass(rl_inputs, tampered)
    assert not outcome.passed and outcome.metadata["failed"] == 1
    assert rows[0]["prompt_id"] in outcome.description


def _sharegpt_rows(path: Path) -> list[dict]:
    # The sample's ShareGPT records as silver would hold them (the few planted malformed
    # lines are skipped here, as silver rejects them).
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    rows = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            continue
        messages = [make_message("system", record["system"])] if record.get("system") else []
        messages += [
            make_message(roles.get(t["from"], t["from"]), t["value"])
            for t in record["conversations"]
        ]
        rows.append({"record_id": record["id"], "messages": messages, "source": "math-tutor"})
    return rows


def test_every_math_problem_of_the_sample_data_gets_a_proven_verifier() -> None:
    config = RlPromptsConfig()
    outcomes: Counter[str] = Counter()
    for row in _sharegpt_rows(DATA_DIR / "samples" / "math_tutor.jsonl"):
        task = math_task(row, config)
        if isinstance(task, Task):
            _, rejection, _ = check_task(task)
            outcomes[f"{task.verifier_kind}:{rejection.reason if rejection else 'ok'}"] += 1
        else:
            outcomes[task.reason] += 1
    # Two planted records have no assistant reply, one a reply with no stated answer.
    assert outcomes == {"numeric:ok": 453, "exact:ok": 207, "no_answer": 3}


@pytest.mark.slow
def test_every_humaneval_verifier_passes_its_solution_and_fails_an_empty_one(
    warehouse: Warehouse,
) -> None:
    seed_humaneval(warehouse)
    report = build_rl_prompts(warehouse, RlPromptsConfig(math_sources=()))
    assert report.rejections == []
    assert report.kinds == {"python_tests": 164}
    assert references_pass(warehouse, report.snapshot_id).passed
