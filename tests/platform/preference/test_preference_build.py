"""build_preferences / build_dpo on a real temporary warehouse: every record and every
candidate pair accounted for, rejections with reasons, other builders' pairs left alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from posttrain.platform import checks
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import Lineage
from posttrain.platform.outcomes.ingest import record_outcomes
from posttrain.platform.preference import (
    PairingConfig,
    PairingRule,
    PreferenceConfig,
    build_dpo,
    build_preferences,
)
from posttrain.platform.preference import checks as pref_checks
from posttrain.platform.schemas import SILVER_PREFERENCES, TableName
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse

PREFS = TableName.SILVER_PREFERENCES
REFUSED = TableName.SILVER_PREFERENCE_REJECTIONS


def _trl(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "prompt": f"What is {n} plus {n}? Explain briefly.",
        "chosen": f"Doubling {n} gives {2 * n}, so the answer is {2 * n}.",
        "rejected": f"It is {2 * n + 1}.",
    } | changes


def _rated(n: int) -> dict[str, Any]:
    return {
        "instruction": f"What is {n} times three? Explain briefly.",
        "completions": [
            {"response": f"Three times {n} is {3 * n}, by adding {n} three times.", "score": 9},
            {"response": f"The product is {3 * n}.", "score": 6},
            {"response": f"About {3 * n + 2}.", "score": 1},
        ],
    }


def _ingest(warehouse: Warehouse, tmp_path: Path, name: str, records: list[Any]) -> None:
    path = tmp_path / f"{name}.jsonl"
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    ingest(warehouse, [SourceSpec(path=path, source=name)])


@pytest.fixture
def seeded(warehouse: Warehouse) -> Warehouse:
    seed_humaneval(warehouse)
    return warehouse


def _now(warehouse: Warehouse) -> dict[str, int | None]:
    """The current snapshots of the tables the preference checks read."""
    return warehouse.pin(
        TableName.BRONZE_RECORDS, TableName.BRONZE_OUTCOMES, PREFS, REFUSED, TableName.GOLD_DPO
    )


def _reasons(warehouse: Warehouse) -> dict[str, int]:
    reasons = warehouse.column(REFUSED, "reason").to_pylist()
    return {reason: reasons.count(reason) for reason in sorted(set(reasons))}


def test_bad_pairs_are_rejections_with_reasons_never_a_failed_run(
    seeded: Warehouse, tmp_path: Path
) -> None:
    records = [
        _trl(1),
        _trl(2),
        _trl(1),  # the same pair again
        _trl(3, rejected=_trl(3)["chosen"]),
        _trl(4, rejected="   "),
        _trl(5, rejected="."),  # fails SFT's quality filters
        {"prompt": "q?", "chosen": "a"},  # missing field
        '{"prompt": "q?", "chosen": "a", "rejected"',  # unparseable
    ]
    _ingest(seeded, tmp_path, "trl", records)
    report = build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    assert report.kept == 2
    assert _reasons(seeded) == {
        "duplicate_pair": 1,
        "empty": 1,
        "malformed": 2,
        "same_sides": 1,
        "too_short": 1,
    }
    assert pref_checks.preferences_conserved(seeded, _now(seeded)).passed


def test_a_contaminated_prompt_is_refused(seeded: Warehouse, tmp_path: Path) -> None:
    humaneval = seeded.read(TableName.EVAL_HUMANEVAL, columns=("prompt",), limit=1)
    leaked = humaneval["prompt"][0].as_py()
    _ingest(seeded, tmp_path, "trl", [_trl(1), _trl(2, prompt="Complete:\n" + leaked)])
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    refused = seeded.read(REFUSED)
    assert refused["reason"].to_pylist() == ["contaminated"]
    assert refused["benchmark"].to_pylist() == ["humaneval"]


def test_secrets_in_a_pair_are_redacted_in_silver_and_gold(
    seeded: Warehouse, tmp_path: Path
) -> None:
    key = "sk-ant-api03-" + "Ab1" * 12
    leaky = _trl(
        1,
        prompt=f"My key is {key}. What is 1 plus 1? Explain briefly.",
        chosen=f"Doubling 1 gives 2. Also, revoke {key} now.",
    )
    _ingest(seeded, tmp_path, "trl", [leaky, _trl(2)])
    report = build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    build_dpo(seeded)
    assert (report.kept, report.counters["redactions.api_key"]) == (2, 2)
    for table in (PREFS, TableName.GOLD_DPO):
        stored = json.dumps(seeded.read(table).to_pylist(), default=str)
        assert key not in stored and stored.count("<API_KEY>") == 2, table


def test_two_answers_that_differ_only_by_a_secret_are_the_same_sides(
    seeded: Warehouse, tmp_path: Path
) -> None:
    one, other = "sk-ant-api03-" + "Ab1" * 12, "sk-ant-api03-" + "Cd2" * 12
    _ingest(
        seeded,
        tmp_path,
        "trl",
        [_trl(1, chosen=f"Use the key {one} here.", rejected=f"Use the key {other} here.")],
    )
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    assert _reasons(seeded) == {"same_sides": 1}


def test_rated_pairs_are_accounted_per_pair(seeded: Warehouse, tmp_path: Path) -> None:
    one, two = _rated(1), _rated(2)
    two["completions"][1]["response"] = "."  # the pair (best, this) fails quality
    _ingest(seeded, tmp_path, "rated", [one, two])
    config = PreferenceConfig(pairing=PairingConfig(rule=PairingRule.BEST_VS_EACH))
    report = build_preferences(seeded, config, InProcessExecutor())
    assert (report.candidates, report.kept) == (4, 3)
    refused = seeded.read(REFUSED)
    assert refused["reason"].to_pylist() == ["too_short"]
    assert refused["pair_id"][0].is_valid  # a pair-level rejection: its record is still kept
    kept = seeded.read(PREFS)
    assert set(kept["pairing_rule"].to_pylist()) == {"best_vs_each"}
    assert sorted(kept["margin"].to_pylist()) == [3.0, 8.0, 8.0]
    outcome = pref_checks.preferences_conserved(seeded, _now(seeded))
    assert outcome.passed, outcome.description


def test_rebuild_keeps_pairs_other_builders_wrote(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "trl", [_trl(1)])
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    rollout = {name: None for name in SILVER_PREFERENCES.names} | {
        "pair_id": "rollout-pair",
        "origin": "rollouts",
        "pairing_rule": "reward_gap",
    }
    seeded.append(PREFS, pa.Table.from_pylist([rollout], SILVER_PREFERENCES), Lineage("t"))
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    origins = sorted(seeded.column(PREFS, "origin").to_pylist())
    assert origins == ["format", "rollouts"]


def test_sft_silver_leaves_preference_records_alone(seeded: Warehouse, tmp_path: Path) -> None:
    chat = {
        "messages": [
            {"role": "user", "content": "Hi there?"},
            {"role": "assistant", "content": "Hello! How can I help?"},
        ]
    }
    _ingest(seeded, tmp_path, "chat", [chat])
    _ingest(seeded, tmp_path, "trl", [_trl(1), "{broken"])
    report = build_silver(seeded, SilverConfig(), InProcessExecutor())
    assert (report.rows_in, report.kept) == (1, 1)
    assert checks.rows_conserved(seeded).passed


def test_judgments_pair_two_chat_records(seeded: Warehouse, tmp_path: Path) -> None:
    question = {"role": "user", "content": "What is the capital of France?"}
    answers = [
        {"messages": [question, {"role": "assistant", "content": "Paris is the capital."}]},
        {"messages": [question, {"role": "assistant", "content": "Lyon, I believe."}]},
    ]
    _ingest(seeded, tmp_path, "answers", answers)
    ids = seeded.read(TableName.BRONZE_RECORDS, columns=("record_id", "row_index"))
    by_line = dict(zip(ids["row_index"].to_pylist(), ids["record_id"].to_pylist(), strict=True))
    judgments = [
        {"chosen_record_id": by_line[1], "rejected_record_id": by_line[2], "margin": 1},
        {"chosen_record_id": by_line[1], "rejected_record_id": "nope"},
    ]
    _ingest(seeded, tmp_path, "judgments", judgments)
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    (pair,) = seeded.read(PREFS).to_pylist()
    assert (pair["origin"], pair["pairing_rule"]) == ("judgment", "judgment")
    assert [m["content"] for m in pair["prompt"]] == ["What is the capital of France?"]
    assert _reasons(seeded) == {"unknown_record": 1}
    assert pref_checks.preferences_conserved(seeded, _now(seeded)).passed


def test_pairwise_preference_outcomes_pair_two_chat_records(
    seeded: Warehouse, tmp_path: Path
) -> None:
    question = {"role": "user", "content": "What is the capital of Italy?"}
    answers = [
        {"messages": [question, {"role": "assistant", "content": "Rome is the capital."}]},
        {"messages": [question, {"role": "assistant", "content": "Milan, I think."}]},
    ]
    _ingest(seeded, tmp_path, "answers", answers)
    ids = seeded.read(TableName.BRONZE_RECORDS, columns=("record_id", "row_index"))
    by_line = dict(zip(ids["row_index"].to_pylist(), ids["record_id"].to_pylist(), strict=True))
    # Arriving later as outcomes: one names two records, one an unknown record, one is a
    # plain preference score (no other record: not a pair).
    record_outcomes(
        seeded,
        [
            {
                "record_id": by_line[1],
                "kind": "preference",
                "value": 2.0,
                "other_record_id": by_line[2],
                "source": "raters",
            },
            {
                "record_id": by_line[1],
                "kind": "preference",
                "value": 1.0,
                "other_record_id": "nope",
            },
            {"record_id": by_line[2], "kind": "preference", "value": -1.0},
        ],
    )
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())

    (pair,) = seeded.read(PREFS).to_pylist()
    assert (pair["origin"], pair["pairing_rule"], pair["margin"]) == ("judgment", "judgment", 2.0)
    assert (pair["chosen_record_id"], pair["rejected_record_id"]) == (by_line[1], by_line[2])
    assert [m["content"] for m in pair["chosen"]] == ["Rome is the capital."]
    assert _reasons(seeded) == {"unknown_record": 1}
    outcome = pref_checks.preferences_conserved(seeded, _now(seeded))
    assert outcome.passed, outcome.description


def test_a_record_that_makes_a_stage_raise_is_a_stage_error(
    seeded: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posttrain.platform.preference import build

    real = build.candidate_pairs

    def explode(payload: str, *args: Any, **kwargs: Any) -> Any:
        if "boom" in payload:
            raise ZeroDivisionError("boom")
        return real(payload, *args, **kwargs)

    monkeypatch.setattr(build, "candidate_pairs", explode)
    _ingest(seeded, tmp_path, "trl", [_trl(1), _trl(2, prompt="boom boom boom?")])
    report = build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    assert report.kept == 1
    assert _reasons(seeded) == {"stage_error": 1}
    assert pref_checks.preferences_conserved(seeded, _now(seeded)).passed


def test_gold_dpo_is_trl_conversational_with_provenance(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "trl", [_trl(1), _trl(2)])
    build_preferences(seeded, PreferenceConfig(), InProcessExecutor())
    assert build_dpo(seeded).rows == 2
    dpo = seeded.read(TableName.GOLD_DPO)
    row = dpo.to_pylist()[0]
    assert [m["role"] for m in row["prompt"]] == ["user"]
    assert [m["role"] for m in row["chosen"]] == ["assistant"]
    assert row["source"] == "trl"
    assert dpo["pair_id"].to_pylist() == sorted(dpo["pair_id"].to_pylist())
    assert pref_checks.sides_differ(seeded, TableName.GOLD_DPO, _now(seeded)).passed
    assert pc.all(pc.is_valid(dpo["pair_id"])).as_py()
