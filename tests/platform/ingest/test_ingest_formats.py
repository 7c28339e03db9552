"""Detecting a record's chat format from its keys, and a file's by majority."""

from __future__ import annotations

from typing import Any

import pytest

from posttrain.platform.ingest.formats import ChatFormat, detect_format, majority_format


@pytest.mark.parametrize("fmt", list(ChatFormat))
def test_each_format_is_detected_from_its_keys(
    fmt: ChatFormat, chat_records: dict[ChatFormat, dict[str, Any]]
) -> None:
    assert detect_format(chat_records[fmt]) is fmt


@pytest.mark.parametrize(
    "value", [{"text": "hi"}, {"instruction": "no output"}, ["a"], "s", 3, None]
)
def test_unknown_keys_and_non_objects_have_no_format(value: Any) -> None:
    assert detect_format(value) is None


def test_a_record_with_two_formats_keys_gets_the_first_in_detection_order() -> None:
    record = {"prompt": "p", "completion": "c", "messages": []}
    assert detect_format(record) is ChatFormat.OPENAI


def test_majority_ignores_records_without_a_format(
    chat_records: dict[ChatFormat, dict[str, Any]],
) -> None:
    sharegpt = chat_records[ChatFormat.SHAREGPT]
    votes = [sharegpt, sharegpt, chat_records[ChatFormat.ALPACA], {"id": 1}, "garbage"]
    assert majority_format(votes) is ChatFormat.SHAREGPT


def test_majority_tie_goes_to_the_earlier_format(
    chat_records: dict[ChatFormat, dict[str, Any]],
) -> None:
    votes = [chat_records[ChatFormat.ALPACA], chat_records[ChatFormat.SHAREGPT]]
    assert majority_format(votes) is ChatFormat.SHAREGPT


def test_majority_of_nothing_detectable_is_none() -> None:
    assert majority_format([{"text": "a"}, 1]) is None
