"""Candidate pairs from each preference format, and the pairing rules of rated completions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from posttrain.platform.errors import RecordError
from posttrain.platform.ingest.formats import ChatFormat, detect_format
from posttrain.platform.messages import make_message
from posttrain.platform.preference.pairs import (
    PairingConfig,
    PairingRule,
    candidate_pairs,
    rated_pairs,
    split_shared_prefix,
)

Records = dict[ChatFormat, dict[str, Any]]


def pairs(record: Any, fmt: ChatFormat, config: PairingConfig | None = None) -> list[Any]:
    return candidate_pairs(json.dumps(record), fmt, "rec", config or PairingConfig())


@pytest.mark.parametrize(
    "fmt",
    [
        ChatFormat.TRL_PREFERENCE,
        ChatFormat.TRANSCRIPT_PAIR,
        ChatFormat.RATED_COMPLETIONS,
        ChatFormat.JUDGMENT,
    ],
)
def test_each_preference_format_is_detected_by_its_keys(
    fmt: ChatFormat, chat_records: Records
) -> None:
    assert detect_format(chat_records[fmt]) is fmt


def test_trl_plain_strings_become_a_user_prompt_and_assistant_sides() -> None:
    (pair,) = pairs({"prompt": "2+2?", "chosen": "4", "rejected": "5"}, ChatFormat.TRL_PREFERENCE)
    assert [m["role"] for m in pair.prompt] == ["user"]
    assert [(m["role"], m["content"]) for m in pair.chosen] == [("assistant", "4")]
    assert pair.pairing_rule == "as_given" and pair.margin is None


def test_trl_conversational_messages_are_kept_as_given(chat_records: Records) -> None:
    (pair,) = pairs(chat_records[ChatFormat.TRL_PREFERENCE], ChatFormat.TRL_PREFERENCE)
    assert pair.rejected[0]["content"] == "Green."


def test_transcripts_shared_prefix_becomes_the_prompt(chat_records: Records) -> None:
    (pair,) = pairs(chat_records[ChatFormat.TRANSCRIPT_PAIR], ChatFormat.TRANSCRIPT_PAIR)
    assert [m["content"] for m in pair.prompt] == ["Name a prime number above 10."]
    assert pair.chosen[0]["content"] == "11 is prime."
    assert pair.rejected[0]["content"] == "12 is prime."


def test_identical_transcripts_keep_the_last_turn_on_both_sides() -> None:
    turns = [make_message("user", "q"), make_message("assistant", "a")]
    prompt, chosen, rejected = split_shared_prefix(turns, turns)
    assert (len(prompt), chosen, rejected) == (1, turns[1:], turns[1:])


def test_rated_best_vs_worst_gives_one_pair_with_its_margin(chat_records: Records) -> None:
    (pair,) = pairs(chat_records[ChatFormat.RATED_COMPLETIONS], ChatFormat.RATED_COMPLETIONS)
    assert (pair.margin, pair.pairing_rule) == (7.0, "best_vs_worst")
    assert pair.rejected[0]["content"] == "A kind of list."


@pytest.mark.parametrize(
    ("rule", "min_margin", "expected"),
    [
        (PairingRule.BEST_VS_WORST, 0.0, [(0, 2)]),
        (PairingRule.BEST_VS_EACH, 0.0, [(0, 1), (0, 2)]),
        (PairingRule.ALL_ABOVE_MARGIN, 0.0, [(0, 1), (0, 2), (1, 2)]),
        (PairingRule.ALL_ABOVE_MARGIN, 3.0, [(0, 1), (0, 2)]),
    ],
)
def test_pairing_rules(
    rule: PairingRule, min_margin: float, expected: list[tuple[int, int]]
) -> None:
    assert rated_pairs([9, 4, 2], PairingConfig(rule=rule, min_margin=min_margin)) == expected


def test_pairing_rule_is_recorded_in_each_pair(chat_records: Records) -> None:
    config = PairingConfig(rule=PairingRule.ALL_ABOVE_MARGIN)
    found = pairs(chat_records[ChatFormat.RATED_COMPLETIONS], ChatFormat.RATED_COMPLETIONS, config)
    assert {p.pairing_rule for p in found} == {"all_above_margin"}
    assert len({p.pair_id for p in found}) == 3


def test_equal_scores_yield_no_pairs() -> None:
    record = {
        "prompt": "q",
        "completions": [{"response": "a", "score": 1}, {"response": "b", "score": 1}],
    }
    with pytest.raises(RecordError) as error:
        pairs(record, ChatFormat.RATED_COMPLETIONS)
    assert error.value.reason == "no_pairs"


def test_judgment_pairs_the_two_named_conversations() -> None:
    question = make_message("user", "q?")
    conversations = {
        "a": [question, make_message("assistant", "good")],
        "b": [question, make_message("assistant", "bad")],
    }
    record = json.dumps({"chosen_record_id": "a", "rejected_record_id": "b", "margin": 2})
    (pair,) = candidate_pairs(record, ChatFormat.JUDGMENT, "j", PairingConfig(), conversations)
    assert (pair.chosen_record_id, pair.rejected_record_id, pair.margin) == ("a", "b", 2.0)
    assert pair.prompt == [question]


def test_judgment_of_an_unknown_record_is_refused_with_its_id() -> None:
    record = json.dumps({"chosen_record_id": "a", "rejected_record_id": "zzz"})
    with pytest.raises(RecordError) as error:
        candidate_pairs(record, ChatFormat.JUDGMENT, "j", PairingConfig(), {})
    assert error.value.reason == "unknown_record"
    assert "chosen_record_id a" in error.value.detail


@pytest.mark.parametrize(
    ("payload", "fmt", "detail"),
    [
        ('{"prompt": "q", "chosen": "a", "rejected"', ChatFormat.TRL_PREFERENCE, "not valid JSON"),
        ('{"prompt": "q", "chosen": "a"}', ChatFormat.TRL_PREFERENCE, "no 'rejected'"),
        ('{"prompt": "q", "chosen": 1, "rejected": "b"}', ChatFormat.TRL_PREFERENCE, "found int"),
        (
            '{"completions": [{"response": "a", "score": 1}]}',
            ChatFormat.RATED_COMPLETIONS,
            "no 'prompt' or 'instruction'",
        ),
        (
            '{"prompt": "q", "completions": [{"response": "a", "score": "high"}]}',
            ChatFormat.RATED_COMPLETIONS,
            "finite number",
        ),
        (
            '{"prompt": "q", "completions": [{"score": 1}]}',
            ChatFormat.RATED_COMPLETIONS,
            "completion 1 has no 'response'",
        ),
        ('{"chosen": [{"content": "x"}], "rejected": []}', ChatFormat.TRANSCRIPT_PAIR, "'role'"),
    ],
)
def test_bad_records_are_malformed_with_a_detail(
    payload: str, fmt: ChatFormat, detail: str
) -> None:
    with pytest.raises(RecordError) as error:
        candidate_pairs(payload, fmt, "rec", PairingConfig())
    assert error.value.reason == "malformed"
    assert detail in error.value.detail
