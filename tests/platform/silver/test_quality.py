"""Quality filters, role-order rules and the QualityStep over Arrow batches."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest
from pydantic import ValidationError

from posttrain.platform.errors import InputFormatError, RecordError
from posttrain.platform.execution import InProcessExecutor, iter_batches
from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE, SILVER_REJECTIONS, RejectionReason
from posttrain.platform.silver.quality import (
    EmptyFilter,
    QualityConfig,
    QualityStep,
    RoleOrderFilter,
    TooLongFilter,
    TooShortFilter,
    default_filters,
    judge_conversation,
    message_chars,
)


def user(text: str = "What is the capital of France?") -> Message:
    return make_message("user", text)


def assistant(
    text: str = "The capital of France is Paris.",
    calls: list[ToolCall] | None = None,
) -> Message:
    return make_message("assistant", text, tool_calls=calls)


def call(call_id: str | None, name: str = "search", arguments: str = '{"q": "paris"}') -> ToolCall:
    return ToolCall(id=call_id, type="function", function={"name": name, "arguments": arguments})


def tool(text: str = '{"result": "Paris"}', call_id: str | None = None) -> Message:
    return make_message("tool", text, tool_call_id=call_id)


def system(text: str = "You are a helpful assistant.") -> Message:
    return make_message("system", text)


# --- QualityConfig -------------------------------------------------------------------------


def test_config_defaults_validate_and_hash_stably() -> None:
    assert QualityConfig().config_hash() == QualityConfig(max_turns=512).config_hash()


def test_config_refuses_min_chars_above_max_chars() -> None:
    with pytest.raises(ValidationError, match="min_conversation_chars"):
        QualityConfig(min_conversation_chars=500, max_conversation_chars=100, max_message_chars=50)


def test_config_refuses_message_limit_above_conversation_limit() -> None:
    with pytest.raises(ValidationError, match="max_message_chars"):
        QualityConfig(max_message_chars=300_000)


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        QualityConfig(max_tokens=10)  # type: ignore[call-arg]


# --- EmptyFilter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "detail"),
    [
        ([], "conversation has no messages"),
        ([user("  "), assistant("\n")], "all 2 messages are blank"),
        ([system(), user(" \t"), assistant()], "turn 2: 'user' message is blank"),
        ([user(), assistant("")], "turn 2: 'assistant' message has neither content nor tool calls"),
    ],
)
def test_empty_filter_rejects(messages: list[Message], detail: str) -> None:
    error = EmptyFilter().check(messages)
    assert error is not None
    assert (error.reason, error.detail) == (RejectionReason.EMPTY, detail)


@pytest.mark.parametrize(
    "messages",
    [
        [user(), assistant()],
        [system(""), user(), assistant()],  # a blank system prompt is no system prompt
        [user(), assistant("", [call("c1")]), tool(""), assistant()],  # tool returned nothing
    ],
)
def test_empty_filter_keeps(messages: list[Message]) -> None:
    assert EmptyFilter().check(messages) is None


# --- TooShortFilter / TooLongFilter --------------------------------------------------------


def test_message_chars_counts_content_and_tool_call_name_and_arguments() -> None:
    assert message_chars(assistant("ab", [call("c1", name="f", arguments="{}")])) == 5


def test_too_short_rejects_a_fragment() -> None:
    error = TooShortFilter(min_conversation_chars=10, min_assistant_chars=2).check(
        [user("hi"), assistant("hello")]
    )
    assert error is not None and error.reason == RejectionReason.TOO_SHORT
    assert error.detail == (
        "conversation has 7 characters; expected at least 10 (min_conversation_chars)"
    )


def test_too_short_rejects_a_one_character_answer() -> None:
    error = TooShortFilter(10, 2).check([user("What is 2+2? Answer briefly."), assistant("4")])
    assert error is not None and error.reason == RejectionReason.TOO_SHORT
    assert "assistant turns have 1 characters in all" in error.detail


def test_too_short_keeps_a_terse_real_answer() -> None:
    assert TooShortFilter(10, 2).check([user("What is 2+2?"), assistant("4.")]) is None


def test_too_short_keeps_a_conversation_exactly_at_the_limits() -> None:
    assert TooShortFilter(9, 2).check([user("2+2 is?"), assistant("4.")]) is None


def test_too_short_counts_tool_calls_as_assistant_text() -> None:
    messages = [user("Find Paris"), assistant("", [call("c1")]), tool(), assistant("Ok")]
    assert TooShortFilter(10, 20).check(messages) is None


def test_default_min_chars_reject_greetings() -> None:
    error = judge_conversation([user("hi"), assistant("hello")], default_filters(QualityConfig()))
    assert error is not None and error.reason == RejectionReason.TOO_SHORT


def test_too_long_rejects_too_many_turns() -> None:
    messages = [user(), assistant()] * 3
    error = TooLongFilter(max_turns=5, max_message_chars=100, max_conversation_chars=1000).check(
        messages
    )
    assert error is not None and error.reason == RejectionReason.TOO_LONG
    assert error.detail == "conversation has 6 turns; expected at most 5 (max_turns)"


def test_too_long_names_the_oversized_message() -> None:
    messages = [user(), assistant(), user("x" * 1500), assistant()]
    error = TooLongFilter(10, 1000, 10_000).check(messages)
    assert error is not None and error.reason == RejectionReason.TOO_LONG
    assert error.detail == (
        "turn 3: 'user' message has 1,500 characters; expected at most 1,000 (max_message_chars)"
    )


def test_too_long_rejects_an_oversized_conversation() -> None:
    messages = [user("x" * 600), assistant("y" * 600)]
    error = TooLongFilter(10, 1000, 1000).check(messages)
    assert error is not None
    assert error.detail == (
        "conversation has 1,200 characters; expected at most 1,000 (max_conversation_chars)"
    )


def test_too_long_keeps_a_conversation_exactly_at_the_limits() -> None:
    messages = [user("x" * 500), assistant("y" * 500)]
    assert (
        TooLongFilter(max_turns=2, max_message_chars=500, max_conversation_chars=1000).check(
            messages
        )
        is None
    )


# --- RoleOrderFilter -----------------------------------------------------------------------

INVALID_ORDERS: dict[str, tuple[list[Message], str]] = {
    "unknown role": (
        [user(), make_message("bot", "hello there")],
        "turn 2: unknown role 'bot'; expected one of system, user, assistant, tool",
    ),
    "second system": (
        [system(), user(), system(), assistant()],
        "turn 3: 'system' message after turn 1; expected at most one system message",
    ),
    "system not first": (
        [user(), system(), assistant()],
        "turn 2: 'system' message after turn 1",
    ),
    "assistant first": (
        [assistant(), user(), assistant()],
        "turn 1: 'assistant' message opens the conversation; expected a user turn first",
    ),
    "assistant after system": (
        [system(), assistant()],
        "turn 2: 'assistant' message follows a 'system' message; expected a user turn first",
    ),
    "two user turns": (
        [user(), user(), assistant()],
        "turn 2: 'user' message follows a 'user' message; expected an assistant reply",
    ),
    "two assistant turns": (
        [user(), assistant(), assistant()],
        "turn 3: 'assistant' message follows an 'assistant' message",
    ),
    "tool after user": (
        [user(), tool(), assistant()],
        "turn 2: 'tool' message follows a 'user' message; expected it to answer an "
        "assistant tool call",
    ),
    "tool first": (
        [tool(), user(), assistant()],
        "turn 1: 'tool' message opens the conversation; expected it to answer",
    ),
    "tool after plain assistant": (
        [user(), assistant(), tool(), assistant()],
        "turn 3: 'tool' message follows a 'assistant' message; expected it to answer",
    ),
    "user after tool call": (
        [user(), assistant("", [call("c1")]), user(), assistant()],
        "turn 3: 'user' message follows the tool calls of turn 2; expected their 'tool' results",
    ),
    "assistant after tool call": (
        [user(), assistant("", [call("c1")]), assistant()],
        "turn 3: 'assistant' message follows the tool calls of turn 2; expected their 'tool'",
    ),
    "user after tool result": (
        [user(), assistant("", [call("c1")]), tool(call_id="c1"), user(), assistant()],
        "turn 4: 'user' message follows a 'tool' result; expected an assistant turn",
    ),
    "unknown call id": (
        [user(), assistant("", [call("c1"), call("c2")]), tool(call_id="c9"), assistant()],
        "turn 3: 'tool' message answers call 'c9', which turn 2 did not make; expected one "
        "of 'c1', 'c2'",
    ),
    "call answered twice": (
        [
            user(),
            assistant("", [call("c1"), call("c2")]),
            tool(call_id="c1"),
            tool(call_id="c1"),
            assistant(),
        ],
        "turn 4: 'tool' message answers call 'c1' of turn 2 a second time",
    ),
    "unanswered call id": (
        [user(), assistant("", [call("c1"), call("c2")]), tool(call_id="c1"), assistant()],
        "turn 4: 'assistant' message leaves 1 of the 2 tool calls of turn 2 ('c2') unanswered",
    ),
    "more results than calls": (
        [user(), assistant("", [call(None)]), tool(), tool(), assistant()],
        "turn 4: 'tool' message is result 2 for the 1 tool calls of turn 2",
    ),
    "fewer results than calls without ids": (
        [user(), assistant("", [call(None), call(None)]), tool(), assistant()],
        "turn 4: 'assistant' message leaves 1 of the 2 tool calls of turn 2 unanswered",
    ),
    "tool calls on a user turn": (
        [make_message("user", "hi", tool_calls=[call("c1")]), assistant()],
        "turn 1: 'user' message carries tool calls; only assistant turns may",
    ),
    "no assistant": (
        [system(), user()],
        "conversation has no assistant turn; expected at least one",
    ),
    "ends with user": (
        [user(), assistant(), user()],
        "conversation ends with a 'user' turn (turn 3); expected it to end with an assistant",
    ),
    "ends with tool result": (
        [user(), assistant("", [call("c1")]), tool(call_id="c1")],
        "conversation ends with a 'tool' turn (turn 3)",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_ORDERS), ids=list(INVALID_ORDERS))
def test_role_order_rejects(case: str) -> None:
    messages, detail = INVALID_ORDERS[case]
    error = RoleOrderFilter().check(messages)
    assert error is not None
    assert error.reason == RejectionReason.INVALID_ROLES
    assert error.detail.startswith(detail), error.detail


VALID_ORDERS: dict[str, list[Message]] = {
    "single exchange": [user(), assistant()],
    "with system prompt": [system(), user(), assistant()],
    "multi-turn": [system(), user(), assistant(), user(), assistant()],
    "tool call with ids": [user(), assistant("", [call("c1")]), tool(call_id="c1"), assistant()],
    "parallel calls answered out of order": [
        user(),
        assistant("Let me look.", [call("a"), call("b")]),
        tool(call_id="b"),
        tool(call_id="a"),
        assistant(),
    ],
    "calls and results without ids": [
        user(),
        assistant("", [call(None), call(None)]),
        tool(),
        tool(),
        assistant(),
    ],
    "results without ids answer calls with ids": [
        user(),
        assistant("", [call("c1")]),
        tool(),
        assistant(),
    ],
    "two rounds of tools": [
        user(),
        assistant("", [call("c1")]),
        tool(call_id="c1"),
        assistant("", [call("c2")]),
        tool(call_id="c2"),
        assistant(),
        user(),
        assistant(),
    ],
    "ends with a tool call (function-calling data)": [user(), assistant("", [call("c1")])],
}


@pytest.mark.parametrize("case", list(VALID_ORDERS), ids=list(VALID_ORDERS))
def test_role_order_keeps(case: str) -> None:
    assert RoleOrderFilter().check(VALID_ORDERS[case]) is None


# --- order of filters ----------------------------------------------------------------------


def test_first_failing_filter_gives_the_reason() -> None:
    filters = default_filters(QualityConfig())
    blank_and_out_of_order = [assistant(""), user()]
    out_of_order_and_short = [assistant("x"), user("y")]
    assert _reason(judge_conversation(blank_and_out_of_order, filters)) == RejectionReason.EMPTY
    assert _reason(judge_conversation(out_of_order_and_short, filters)) == (
        RejectionReason.INVALID_ROLES
    )


def test_missing_messages_count_as_empty() -> None:
    assert _reason(judge_conversation(None, default_filters(QualityConfig()))) == "empty"


def test_a_null_message_is_malformed() -> None:
    messages: list[Message] = [user(), None, assistant()]  # type: ignore[list-item]
    error = judge_conversation(messages, default_filters(QualityConfig()))
    assert error is not None and error.reason == RejectionReason.MALFORMED
    assert error.detail.startswith("turn 2: message is null")


def _reason(error: RecordError | None) -> str | None:
    return None if error is None else error.reason


# --- QualityStep ---------------------------------------------------------------------------

GOOD = [user(), assistant()]
BATCH_ROWS: list[tuple[str, list[Message] | None, str | None]] = [
    ("r0", GOOD, None),
    ("r1", [], "empty"),
    ("r2", [user(), user(), assistant()], "invalid_roles"),
    ("r3", [system(), user("Tell me about the Eiffel tower."), assistant("A tower.")], None),
    ("r4", [user("hi"), assistant("yo")], "too_short"),
    ("r5", [user("x" * 120_000), assistant()], "too_long"),
    ("r6", None, "empty"),
]


def _batch() -> pa.Table:
    return pa.table(
        {
            "record_id": [row[0] for row in BATCH_ROWS],
            "messages": pa.array([row[1] for row in BATCH_ROWS], type=MESSAGES_TYPE),
            "source": ["unit"] * len(BATCH_ROWS),
            "batch_id": ["b1"] * len(BATCH_ROWS),
            "license": [f"lic-{i}" for i in range(len(BATCH_ROWS))],
        }
    )


def test_step_conserves_rows_and_keeps_every_other_column() -> None:
    batch = _batch()
    result = QualityStep()(batch)
    assert result.kept.num_rows + result.rejected.num_rows == batch.num_rows
    assert result.kept.schema == batch.schema
    assert result.kept["record_id"].to_pylist() == ["r0", "r3"]
    assert result.kept["license"].to_pylist() == ["lic-0", "lic-3"]


def test_step_rejections_carry_reason_detail_and_provenance() -> None:
    result = QualityStep()(_batch())
    assert result.rejected.schema == SILVER_REJECTIONS
    expected = {rid: reason for rid, _, reason in BATCH_ROWS if reason}
    rows = result.rejected.to_pylist()
    assert {row["record_id"]: row["reason"] for row in rows} == expected
    assert all(
        row["detail"] and row["source"] == "unit" and row["batch_id"] == "b1" for row in rows
    )
    assert result.rejected_by_reason == {
        "empty": 2,
        "invalid_roles": 1,
        "too_short": 1,
        "too_long": 1,
    }


def test_step_accepts_a_record_batch() -> None:
    batch = _batch().to_batches()[0]
    assert QualityStep()(batch).kept["record_id"].to_pylist() == ["r0", "r3"]


def test_step_applies_its_config() -> None:
    strict = QualityStep(QualityConfig(min_assistant_chars=40))
    assert strict(_batch()).kept.num_rows == 0


def test_step_is_picklable_and_runs_through_an_executor() -> None:
    step = pickle.loads(pickle.dumps(QualityStep(QualityConfig(max_turns=100))))
    results = list(
        InProcessExecutor().map_batches(step, iter_batches(_batch(), 3), stage="quality")
    )
    kept = [rid for r in results for rid in r.kept["record_id"].to_pylist()]
    assert kept == ["r0", "r3"]
    assert sum(r.kept.num_rows + r.rejected.num_rows for r in results) == len(BATCH_ROWS)


def test_step_refuses_a_batch_without_messages() -> None:
    with pytest.raises(InputFormatError, match="'messages' column"):
        QualityStep()(pa.table({"record_id": ["a"], "payload": ["{}"]}))


def test_step_refuses_messages_of_the_wrong_type() -> None:
    with pytest.raises(InputFormatError, match="found type string"):
        QualityStep()(pa.table({"record_id": ["a"], "messages": ["hello"]}))


@pytest.mark.slow
def test_step_gives_the_same_results_on_ray(ray_runtime: None) -> None:
    from posttrain.platform.execution import RayExecutor

    step, batches = QualityStep(), list(iter_batches(_batch(), 3))
    local = list(InProcessExecutor().map_batches(step, batches, stage="quality"))
    remote = list(RayExecutor().map_batches(step, batches, stage="quality"))
    assert [(r.kept, r.rejected) for r in remote] == [(r.kept, r.rejected) for r in local]
