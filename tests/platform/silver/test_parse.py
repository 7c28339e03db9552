"""Parsing each chat format into canonical messages, and the detail of each malformed kind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from posttrain.platform.errors import RecordError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.messages import make_message
from posttrain.platform.silver.parse import MAX_JSON_DEPTH, parse_payload

Records = dict[ChatFormat, dict[str, Any]]


def parse(record: Any, fmt: ChatFormat) -> list[Any]:
    return parse_payload(json.dumps(record), fmt)


def roles(record: Any, fmt: ChatFormat) -> list[str]:
    return [m["role"] for m in parse(record, fmt)]


def malformed_detail(payload: Any, fmt: ChatFormat) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    with pytest.raises(RecordError) as caught:
        parse_payload(text, fmt)
    assert caught.value.reason == "malformed"
    return caught.value.detail


# -- each format ---------------------------------------------------------------------------


def test_openai_keeps_tool_calls_and_tool_turns(chat_records: Records) -> None:
    messages = parse(chat_records[ChatFormat.OPENAI], ChatFormat.OPENAI)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    call = messages[2]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == ("call_1", "get_weather")
    assert messages[2]["content"] == ""
    assert messages[3]["tool_call_id"] == "call_1"


def test_openai_text_parts_are_joined_and_legacy_roles_mapped() -> None:
    record = {
        "messages": [
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}],
            },
            {"role": "user", "content": "Time?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "now", "arguments": {"tz": "UTC"}},
            },
            {"role": "function", "name": "now", "content": "12:00"},
        ]
    }
    messages = parse(record, ChatFormat.OPENAI)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[0]["content"] == "Be\nbrief."
    assert messages[2]["tool_calls"][0]["function"] == {"name": "now", "arguments": '{"tz": "UTC"}'}
    assert messages[3]["name"] == "now"


def test_sharegpt_speakers_map_to_roles() -> None:
    record = {
        "system": "Use tools.",
        "conversations": [
            {"from": "human", "value": "2+2?"},
            {
                "from": "function_call",
                "value": json.dumps({"name": "calc", "arguments": {"e": "2+2"}}),
            },
            {"from": "observation", "value": "4"},
            {"from": "gpt", "value": "4"},
        ],
    }
    messages = parse(record, ChatFormat.SHAREGPT)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"e": "2+2"}'


def test_sharegpt_unknown_speaker_is_kept_for_the_role_filter() -> None:
    record = {"conversations": [{"from": "narrator", "value": "Once..."}]}
    assert roles(record, ChatFormat.SHAREGPT) == ["narrator"]


def test_alpaca_joins_instruction_and_input_with_a_blank_line(chat_records: Records) -> None:
    messages = parse(chat_records[ChatFormat.ALPACA], ChatFormat.ALPACA)
    assert messages == [
        make_message("user", "Translate to French.\n\nGood morning"),
        make_message("assistant", "Bonjour"),
    ]


def test_alpaca_without_input_uses_the_instruction_alone() -> None:
    record = {"instruction": "Name a prime.", "input": "  ", "output": "7"}
    assert parse(record, ChatFormat.ALPACA)[0]["content"] == "Name a prime."


def test_alpaca_system_and_history_come_first() -> None:
    record = {
        "system": "Be kind.",
        "history": [["Hi", "Hello!"]],
        "instruction": "Bye?",
        "output": "Bye!",
    }
    assert roles(record, ChatFormat.ALPACA) == ["system", "user", "assistant", "user", "assistant"]


def test_prompt_completion_strings_become_user_and_assistant(chat_records: Records) -> None:
    messages = parse(chat_records[ChatFormat.PROMPT_COMPLETION], ChatFormat.PROMPT_COMPLETION)
    assert messages == [make_message("user", "Reverse 'abc'."), make_message("assistant", "'cba'")]


def test_prompt_completion_may_hold_message_lists() -> None:
    record = {
        "prompt": [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hi."}],
    }
    assert roles(record, ChatFormat.PROMPT_COMPLETION) == ["system", "user", "assistant"]


def test_role_order_and_empty_turns_are_left_to_the_quality_filters() -> None:
    record = {
        "messages": [{"role": "assistant", "content": ""}, {"role": "assistant", "content": "x"}]
    }
    assert roles(record, ChatFormat.OPENAI) == ["assistant", "assistant"]


# -- malformed records -------------------------------------------------------------------------


def test_undecodable_json_says_what_the_parser_expected() -> None:
    detail = malformed_detail('{"prompt": "a" "completion": "b"}', ChatFormat.PROMPT_COMPLETION)
    assert detail == "line is not valid JSON: Expecting ',' delimiter at char 15"


def test_unterminated_string_detail_reads_well() -> None:
    detail = malformed_detail('{"prompt": "a', ChatFormat.PROMPT_COMPLETION)
    assert detail == "line is not valid JSON: Unterminated string starting at char 11"


def test_json_nested_100_000_deep_is_malformed_before_it_is_decoded() -> None:
    deep = '{"prompt": "a", "completion": "b", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    detail = malformed_detail(deep, ChatFormat.PROMPT_COMPLETION)
    assert detail == "JSON nests 100,001 levels deep; expected at most 200 (MAX_JSON_DEPTH)"


def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine() -> None:
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    payload = f'{{"prompt": "{"[" * 5000}", "completion": "b", "x": {nested}}}'
    assert parse_payload(payload, ChatFormat.PROMPT_COMPLETION)[0]["content"] == "[" * 5000


def test_a_lone_surrogate_is_malformed_not_a_crash_when_stored() -> None:
    payload = '{"prompt": "caf\\u00e9 \\ud800!", "completion": "b"}'
    detail = malformed_detail(payload, ChatFormat.PROMPT_COMPLETION)
    assert detail == (
        "a string holds the lone UTF-16 surrogate '\\\\ud800', which is not valid Unicode "
        "text (expected a surrogate pair or another character)"
    )


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    payload = '{"prompt": "\\ud83d\\ude00", "completion": "b"}'
    assert parse_payload(payload, ChatFormat.PROMPT_COMPLETION)[0]["content"] == "\U0001f600"


@pytest.mark.parametrize(
    ("payload", "found"), [("[1, 2]", "list"), ('"text"', "string"), ("null", "null")]
)
def test_json_that_is_not_an_object_is_malformed(payload: str, found: str) -> None:
    assert (
        malformed_detail(payload, ChatFormat.OPENAI)
        == f"record must be a JSON object, found a {found}"
    )


@pytest.mark.parametrize(
    ("fmt", "record", "detail"),
    [
        (ChatFormat.OPENAI, {"message": []}, "openai record has no 'messages' (keys: 'message')"),
        (
            ChatFormat.SHAREGPT,
            {"instruction": "a", "output": "b"},
            "sharegpt record has no 'conversations' (its keys look like alpaca)",
        ),
        (
            ChatFormat.ALPACA,
            {"instruction": "a", "input": ""},
            "alpaca record has no 'output' (keys: 'input', 'instruction')",
        ),
        (
            ChatFormat.PROMPT_COMPLETION,
            {"prompt": "a"},
            "prompt_completion record has no 'completion' (keys: 'prompt')",
        ),
    ],
)
def test_missing_keys_are_named(fmt: ChatFormat, record: dict[str, Any], detail: str) -> None:
    assert malformed_detail(record, fmt) == detail


@pytest.mark.parametrize(
    ("fmt", "record", "detail"),
    [
        (
            ChatFormat.OPENAI,
            {"messages": None},
            "'messages' must be a list of messages, found null",
        ),
        (
            ChatFormat.OPENAI,
            {"messages": [{"role": "user", "content": {"text": "hi"}}]},
            "message 1 'content' must be a string, null or a list of text parts, found object",
        ),
        (ChatFormat.OPENAI, {"messages": [{"content": "hi"}]}, "message 1 has no 'role' string"),
        (ChatFormat.OPENAI, {"messages": ["hi"]}, "message 1 must be an object, found string"),
        (
            ChatFormat.OPENAI,
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "message 1 has a content part of type 'image_url'; only text parts are supported",
        ),
        (
            ChatFormat.OPENAI,
            {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]},
            "message 1 tool call 1 is not a tool call with a function 'name'",
        ),
        (
            ChatFormat.SHAREGPT,
            {"conversations": "hi"},
            "sharegpt 'conversations' must be a list of turns, found string",
        ),
        (
            ChatFormat.SHAREGPT,
            {"conversations": [{"from": "human", "value": ["hi"]}]},
            "turn 1 'value' must be a string, found list",
        ),
        (
            ChatFormat.SHAREGPT,
            {"conversations": [{"from": "function_call", "value": "calc(2)"}]},
            "turn 1 ('function_call') is not JSON: 'calc(2)'",
        ),
        (
            ChatFormat.ALPACA,
            {"instruction": ["a"], "output": "b"},
            "alpaca record 'instruction' must be a string, found list",
        ),
        (
            ChatFormat.PROMPT_COMPLETION,
            {"prompt": "a", "completion": 4},
            "prompt_completion 'completion' must be a string or a list of messages, found int",
        ),
    ],
)
def test_wrong_types_are_malformed_with_the_expectation(
    fmt: ChatFormat, record: dict[str, Any], detail: str
) -> None:
    assert malformed_detail(record, fmt) == detail
