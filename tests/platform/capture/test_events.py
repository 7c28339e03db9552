"""Captured events: identities, images kept as references, outcome mapping."""

from __future__ import annotations

import base64
import json

import pytest

from posttrain.platform.capture.events import EventError, capture_record_id, parse_event
from posttrain.platform.capture.service import outcome_row, record_row


def test_an_inlined_image_is_stored_as_a_reference_not_its_bytes() -> None:
    blob = base64.b64encode(b"\x89PNG" + b"\0" * 5000).decode()
    raw = {
        "type": "session",
        "id": "s1",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{blob}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
                ],
            }
        ],
    }
    row = record_row(parse_event(raw), raw, "alpha")  # type: ignore[arg-type]
    assert blob not in row["payload"]
    parts = json.loads(row["payload"])["messages"][0]["content"]
    assert parts[1]["image_url"]["url"].startswith("sha256:")
    assert parts[1]["image_url"]["url"].endswith(";type=image/png;bytes=5004")
    assert parts[2]["image_url"]["url"] == "https://x.test/cat.png"


def test_a_turn_is_its_request_and_response_keyed_by_session_and_turn() -> None:
    raw = {
        "type": "turn",
        "id": "t1",
        "session_id": "s1",
        "messages": [{"role": "user", "content": "hi"}],
        "response": {"role": "assistant", "content": "hello"},
    }
    row = record_row(parse_event(raw), raw, "alpha")  # type: ignore[arg-type]
    assert row["record_id"] == capture_record_id("alpha", "turn", "s1", "t1")
    assert [m["role"] for m in json.loads(row["payload"])["messages"]] == ["user", "assistant"]
    assert capture_record_id("beta", "turn", "s1", "t1") != row["record_id"]


def test_thumbs_become_feedback_of_plus_or_minus_one() -> None:
    raw = {"type": "outcome", "id": "o", "kind": "thumbs", "session_id": "s1", "value": "down"}
    row = outcome_row(parse_event(raw), raw, "alpha")  # type: ignore[arg-type]
    assert (row["kind"], row["value"], row["text"]) == ("feedback", -1.0, "thumbs_down")
    assert row["record_id"] == capture_record_id("alpha", "session", "s1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "chat", "id": "x"}, "'type' must be session, turn or outcome"),
        ({"type": "session", "id": "", "messages": [{"role": "user"}]}, "id:"),
        ({"type": "session", "id": "x", "messages": [{"role": "robot"}]}, "messages.0.role"),
        ({"type": "session", "id": "x", "messages": [], "extra": 1}, "and 1 more"),
    ],
)
def test_a_malformed_event_is_refused_naming_the_field(raw: object, expected: str) -> None:
    with pytest.raises(EventError, match=expected):
        parse_event(raw)
