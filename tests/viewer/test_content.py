"""Malformed content is found per row; cells render as safe HTML."""

from __future__ import annotations

from viewer_data import BROKEN_ARGS, CONTROL, HOSTILE, message

from posttrain.platform.malformed import row_flags
from posttrain.viewer.render import markdown_html
from posttrain.viewer.shape import shape_row


def _kinds(messages: list[dict[str, object]]) -> set[str]:
    return {flag.kind for flag in row_flags({"messages": messages})}


def test_each_kind_of_malformed_content_is_flagged() -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": BROKEN_ARGS}}
    assert "invalid_json" in _kinds(
        [message("user", "q"), message("assistant", None, tool_calls=[call])]
    )
    assert "invalid_json" in _kinds(
        [message("user", "q"), message("assistant", '```json\n{"a": 1,}\n```')]
    )
    assert "invalid_xml" in _kinds(
        [message("user", "q"), message("assistant", "```xml\n<a><b></a>\n```")]
    )
    assert "role_order" in _kinds([message("assistant", "hi"), message("assistant", "again")])
    assert "truncated" in _kinds([message("user", "q"), message("assistant", "```py\nx = 1")])
    assert "truncated" in _kinds([message("user", "q"), message("assistant", "First,")])
    assert "empty_assistant" in _kinds([message("user", "q"), message("assistant", "  ")])
    assert "redaction_marker" in _kinds(
        [message("user", "mail <EMAIL>"), message("assistant", "ok")]
    )
    assert "control_token" in _kinds([message("user", CONTROL), message("assistant", "ok")])


def test_a_clean_conversation_has_no_flags() -> None:
    assert (
        _kinds(
            [
                message("system", "be brief"),
                message("user", "2+2?"),
                message("assistant", '```json\n{"answer": 4}\n```'),
            ]
        )
        == set()
    )


def test_markdown_escapes_html_and_refuses_script_links() -> None:
    html = str(markdown_html(HOSTILE + "\n\n[x](javascript:alert(1)) `<b>`"))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html and "<a " not in html


def test_code_blocks_are_highlighted_on_the_server() -> None:
    html = str(markdown_html("```python\ndef f():\n    return '<x>'\n```"))
    assert 'class="hl"' in html and "&lt;x&gt;" in html


def test_an_oversized_cell_is_cut_and_says_so() -> None:
    row = {"record_id": "r", "messages": [message("user", "q"), message("assistant", "a" * 9000)]}
    shown = shape_row(row, "r", limit=1000)
    answer = shown.columns["messages"][1]
    assert answer.was_cut and answer.chars == 9000
    assert len(str(answer.raw)) < 1200
