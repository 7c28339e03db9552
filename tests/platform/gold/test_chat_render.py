from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from posttrain.platform.gold.chat_render import (
    CHATML_TEMPLATE_PATH,
    ChatMLRenderer,
    ChatRenderer,
    JinjaChatRenderer,
    RenderError,
    conversations_from_arrow,
    make_renderer,
)
from posttrain.platform.gold.tokenize import load_tokenizer
from posttrain.platform.messages import Message, make_message

SPECIAL_TOKENS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


@pytest.fixture(scope="module")
def jinja() -> JinjaChatRenderer:
    return JinjaChatRenderer(CHATML_TEMPLATE_PATH.read_text(), SPECIAL_TOKENS)


def test_fast_chatml_renderer_matches_jinja_on_varied_conversations(
    varied_conversations: dict[str, list[Message]],
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
    jinja: JinjaChatRenderer,
) -> None:
    table = make_conversations_table(list(varied_conversations.values()))
    conversations = conversations_from_arrow(table.column("messages"))
    fast = ChatMLRenderer(jinja)
    for name, conversation in zip(varied_conversations, conversations, strict=True):
        assert conversation is not None
        assert fast.render(conversation) == jinja.render(conversation), name


def test_fast_renderer_is_chosen_only_for_the_shipped_template() -> None:
    shipped = CHATML_TEMPLATE_PATH.read_text()
    assert isinstance(make_renderer(shipped, SPECIAL_TOKENS), ChatMLRenderer)
    assert isinstance(make_renderer(shipped + " ", SPECIAL_TOKENS), JinjaChatRenderer)


def test_shipped_tokenizer_template_is_the_fast_path_template() -> None:
    assert load_tokenizer("posttrain-chat-8k").chat_template == CHATML_TEMPLATE_PATH.read_text()


def _outcome(renderer: ChatRenderer, conversation: list[dict[str, Any]]) -> object:
    try:
        return renderer.render(conversation)
    except RenderError as error:
        return f"refused: {error}"


@pytest.mark.parametrize(
    "conversation",
    [
        [{"role": "user", "content": ["a", "list"]}],  # multimodal-style content
        [{"content": "no role"}],
        [{"role": "assistant", "content": "x", "tool_calls": [{"function": None}]}],
        [{"role": "assistant", "content": 0}],
        [{"role": "assistant", "tool_calls": {"not": "a list"}}],
    ],
)
def test_unusual_shapes_render_or_fail_exactly_as_jinja(
    conversation: list[dict[str, Any]], jinja: JinjaChatRenderer
) -> None:
    assert _outcome(ChatMLRenderer(jinja), conversation) == _outcome(jinja, conversation)


def test_render_many_reports_refused_conversations_in_place(jinja: JinjaChatRenderer) -> None:
    good = [{"role": "user", "content": "hi"}]
    results = ChatMLRenderer(jinja).render_many([good, None, [{"content": "no role"}]])
    assert isinstance(results[0], tuple)
    assert isinstance(results[1], RenderError)
    assert isinstance(results[2], RenderError)


def test_generation_spans_cover_assistant_output_and_end_token(jinja: JinjaChatRenderer) -> None:
    text, spans = ChatMLRenderer(jinja).render(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer"}]
    )
    assert [text[start:end] for start, end in spans] == ["answer<|im_end|>"]


def test_conversations_from_arrow_drops_null_keys_like_transformers(
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
) -> None:
    table = make_conversations_table([[make_message("user", "hi", name=None)]])
    [conversation] = conversations_from_arrow(table.column("messages"))
    assert conversation == [{"role": "user", "content": "hi", "tool_calls": []}]


def test_column_rendering_matches_jinja_on_varied_conversations(
    varied_conversations: dict[str, list[Message]],
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
    jinja: JinjaChatRenderer,
) -> None:
    column = make_conversations_table(list(varied_conversations.values()))["messages"]
    assert ChatMLRenderer(jinja).render_column(column) == jinja.render_column(column)


def test_column_rendering_handles_slices_and_chunks(
    varied_conversations: dict[str, list[Message]],
    make_conversations_table: Callable[[list[list[Message]]], pa.Table],
    jinja: JinjaChatRenderer,
) -> None:
    column = make_conversations_table(list(varied_conversations.values()))["messages"]
    pieces = pa.chunked_array(
        [column.combine_chunks().slice(2, 3), column.combine_chunks().slice(7, 4)]
    )
    expected = jinja.render_column(column.slice(2, 3)) + jinja.render_column(column.slice(7, 4))
    assert ChatMLRenderer(jinja).render_column(pieces) == expected


def test_column_rendering_of_null_values_matches_jinja(jinja: JinjaChatRenderer) -> None:
    from posttrain.platform.schemas import MESSAGES_TYPE

    assistant = {"role": "assistant", "content": "x", "name": None, "tool_call_id": None}
    column = pa.array(
        [
            None,  # no conversation at all
            [None],  # a null message
            [{**assistant, "tool_calls": [None]}],  # a null tool call
            [{**assistant, "tool_calls": [{"id": "1", "type": "function", "function": None}]}],
            [{**assistant, "role": None, "tool_calls": None}],
            [{**assistant, "content": None, "tool_calls": None}],
        ],
        type=MESSAGES_TYPE,
    )
    fast = ChatMLRenderer(jinja).render_column(column)
    slow = jinja.render_column(column)
    assert [str(item) if isinstance(item, RenderError) else item for item in fast] == [
        str(item) if isinstance(item, RenderError) else item for item in slow
    ]
