"""Rows shaped for the templates: messages pre-rendered to safe HTML, oversized cells cut,
the kind of row (chat, preference pair, RL prompt, rollout, plain) decided once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from posttrain.platform.malformed import Flag, row_flags
from posttrain.viewer.render import (
    MAX_CHARS,
    args_html,
    code_html,
    cut,
    json_text,
    markdown_html,
    raw_html,
)

_MESSAGE_COLUMNS = ("messages", "prompt", "chosen", "rejected")
_HIDDEN = {"minhash", "payload_bytes", "input_ids", "assistant_masks"}


@dataclass
class ShownMessage:
    role: str
    rendered: Markup
    raw: Markup
    was_cut: bool
    chars: int
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ShownRow:
    key: str | None
    kind: str  # chat, preference, rl_prompt, rollout, plain
    columns: dict[str, list[ShownMessage]]
    fields: list[tuple[str, Markup, bool]]  # name, safe html, was cut
    flags: list[Flag]
    raw_json: str
    verifier: Markup | None = None


def shown_messages(messages: list[dict[str, Any]] | None, limit: int) -> list[ShownMessage]:
    shown = []
    for message in messages or []:
        content = message.get("content") or ""
        text, was_cut = cut(content, limit)
        calls = []
        for call in message.get("tool_calls") or []:
            function = (call or {}).get("function") or {}
            arguments = function.get("arguments")
            arg_text, arg_cut = cut(arguments or "", limit)
            calls.append(
                {
                    "id": (call or {}).get("id"),
                    "name": function.get("name") or "?",
                    "html": args_html(arg_text if arguments is not None else None),
                    "was_cut": arg_cut,
                }
            )
        role = str(message.get("role") or "?")
        rendered = (
            Markup(code_html(text, None))
            if role == "tool" and _looks_code(text)
            else markdown_html(text)
        )
        shown.append(
            ShownMessage(
                role,
                rendered,
                raw_html(text),
                was_cut,
                len(content),
                message.get("name"),
                message.get("tool_call_id"),
                calls,
            )
        )
    return shown


def _looks_code(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(("{", "[", "Traceback")) or "\n    " in stripped


def _scalar_html(name: str, value: Any, limit: int) -> tuple[Markup, bool]:
    if value is None:
        return Markup("<span class='null'>null</span>"), False
    if isinstance(value, str) and name in ("verifier_spec", "sampling", "payload"):
        try:
            pretty = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except (json.JSONDecodeError, RecursionError):
            pretty = value
        text, was_cut = cut(pretty, limit)
        return Markup(code_html(text, "json")), was_cut
    if isinstance(value, str):
        text, was_cut = cut(value, limit)
        if name in ("reference", "completion", "canonical_solution", "prompt_text") or (
            "\n" in text and len(text) > 200
        ):
            return raw_html(text), was_cut
        return Markup.escape(text), was_cut
    text, was_cut = cut(json_text(value) if isinstance(value, list | dict) else str(value), limit)
    return Markup.escape(text), was_cut


def shape_row(row: dict[str, Any], key: str | None, limit: int = MAX_CHARS) -> ShownRow:
    """A row ready for the templates (``limit``: characters shown per cell)."""
    names = set(row)
    if {"chosen", "rejected"} <= names:
        kind = "preference"
    elif "verifier_kind" in names and "prompt" in names:
        kind = "rl_prompt"
    elif "messages" in names and "reward" in names:
        kind = "rollout"
    elif "messages" in names:
        kind = "chat"
    else:
        kind = "plain"
    columns = {
        c: shown_messages(row.get(c), limit)
        for c in _MESSAGE_COLUMNS
        if c in names and isinstance(row.get(c), list | type(None))
    }
    fields = []
    for name, value in row.items():
        if name in columns or name in _HIDDEN:
            continue
        html, was_cut = _scalar_html(name, value, limit)
        fields.append((name, html, was_cut))
    verifier = None
    if kind == "rl_prompt":
        spec = row.get("verifier_spec") or ""
        verifier = Markup(code_html(_pretty(spec), "json"))
    raw = {k: v for k, v in row.items() if k not in _HIDDEN}
    raw_text, _ = cut(json_text(raw), limit * 4)
    return ShownRow(key, kind, columns, fields, row_flags(row), raw_text, verifier)


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, RecursionError, TypeError):
        return str(text)
