"""Content that looks fine in a table and is broken for a trainer: found per row.

Each check names what is wrong and where (the turn, 1-based): tool-call arguments or a
structured answer (a JSON or XML reply, or a fenced ``json``/``xml`` block) that does not
parse, a role order silver would refuse
(:func:`posttrain.platform.silver.roles.role_order_problem`), a truncated turn (an
unclosed code fence, a reply cut after a comma or an opening bracket, a conversation that
stops before the assistant answers), an empty assistant reply, a redaction placeholder
left in the text (``<EMAIL>``, ...), and chat-template control tokens spelled as text
(``<|im_end|>``, ...), which the tokenizer would read as markup.

Example:
    >>> [f.kind for f in row_flags({"messages": [{"role": "user", "content": "hi"}]})]
    ['truncated']
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from posttrain.platform.silver.detectors import RedactionKind
from posttrain.platform.silver.redact import RedactionConfig

KINDS = (
    "invalid_json",
    "invalid_xml",
    "role_order",
    "truncated",
    "empty_assistant",
    "redaction_marker",
    "control_token",
)

# Control tokens of the common chat templates (ChatML, Llama 2/3, Gemma, Mistral, GPT-2):
# text that spells one becomes markup once the template renders the conversation.
CONTROL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[INST]",
    "[/INST]",
    "<|assistant|>",
    "<|user|>",
    "<|system|>",
)
_CONTROL = re.compile("|".join(re.escape(token) for token in CONTROL_TOKENS))
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CUT_ENDING = re.compile(r"[,:;(\[{]\s*\Z")
_MESSAGE_COLUMNS = ("messages", "prompt", "chosen", "rejected")


def _placeholders() -> tuple[str, ...]:
    config = RedactionConfig()
    return tuple(config.placeholder_for(kind) for kind in RedactionKind)


PLACEHOLDERS = _placeholders()


@dataclass(frozen=True)
class Flag:
    """One problem in one row: its kind, the column and turn, and what was found."""

    kind: str
    column: str
    turn: int | None
    detail: str

    def describe(self) -> str:
        where = f"{self.column} turn {self.turn}" if self.turn else self.column
        return f"{self.kind} ({where}): {self.detail}"


def _json_problem(text: str) -> str | None:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return getattr(exc, "msg", str(exc)) + (
            f" at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        )
    return None


def _xml_problem(text: str) -> str | None:
    try:
        ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return str(exc)
    return None


def _structured(content: str) -> Iterable[tuple[str, str]]:
    """(kind, text) of each structured part of an answer: the whole reply when it is a
    JSON or XML document, and each fenced ``json``/``xml`` block."""
    stripped = content.strip()
    if stripped.startswith(("{", "[")) and stripped.endswith(("}", "]")):
        yield "json", stripped
    elif stripped.startswith("<?xml"):
        yield "xml", stripped
    for match in _FENCE.finditer(content):
        language = match.group(1).lower()
        if language in ("json", "xml"):
            yield language, match.group(2)


def message_flags(column: str, messages: Sequence[Mapping[str, Any]]) -> list[Flag]:
    """The problems of one list of messages (``column`` names it in the flags)."""
    from posttrain.platform.silver.roles import role_order_problem

    flags: list[Flag] = []
    for turn, message in enumerate(messages, start=1):
        role = message.get("role")
        content = message.get("content") or ""
        calls = message.get("tool_calls") or []
        for call in calls:
            function = (call or {}).get("function") or {}
            arguments = function.get("arguments")
            if arguments is None:
                continue
            problem = _json_problem(arguments)
            if problem:
                name = function.get("name") or "?"
                flags.append(
                    Flag("invalid_json", column, turn, f"tool call {name!r} arguments: {problem}")
                )
        if role == "assistant":
            if not content.strip() and not calls:
                flags.append(Flag("empty_assistant", column, turn, "the reply is empty"))
            for kind, text in _structured(content):
                problem = _json_problem(text) if kind == "json" else _xml_problem(text)
                if problem:
                    flags.append(
                        Flag(f"invalid_{kind}", column, turn, f"structured answer: {problem}")
                    )
            if content.count("```") % 2 == 1:
                flags.append(Flag("truncated", column, turn, "a code block is never closed"))
            elif _CUT_ENDING.search(content):
                flags.append(
                    Flag(
                        "truncated", column, turn, f"the reply stops at {content.rstrip()[-20:]!r}"
                    )
                )
        found = [p for p in PLACEHOLDERS if p in content]
        if found:
            flags.append(Flag("redaction_marker", column, turn, ", ".join(found)))
        token = _CONTROL.search(content)
        if token:
            flags.append(Flag("control_token", column, turn, f"{token.group(0)!r} spelled as text"))
    if column == "messages" and messages:
        problem = role_order_problem(list(messages))  # type: ignore[arg-type]
        if problem:
            flags.append(Flag("role_order", column, None, problem))
        if messages[-1].get("role") in ("user", "system"):
            flags.append(
                Flag(
                    "truncated",
                    column,
                    len(messages),
                    "the conversation stops before the assistant answers",
                )
            )
    return flags


def row_flags(row: Mapping[str, Any]) -> list[Flag]:
    """Every problem found in the message columns of one row."""
    flags: list[Flag] = []
    for column in _MESSAGE_COLUMNS:
        messages = row.get(column)
        if isinstance(messages, list):
            flags.extend(message_flags(column, messages))
    return flags


def message_columns(names: Iterable[str]) -> list[str]:
    """The columns of a table that hold message lists."""
    return [c for c in _MESSAGE_COLUMNS if c in set(names)]


@dataclass(frozen=True)
class FlagCounts:
    """Rows with each kind of problem in one table snapshot (over ``rows`` rows read)."""

    counts: dict[str, int]
    rows: int
    complete: bool  # False when the scan stopped at the cap

    @property
    def flagged(self) -> int:
        return sum(self.counts.values())


def count_flags(rows: Iterable[Mapping[str, Any]], cap: int) -> FlagCounts:
    """Rows per problem kind (a row counts once per kind) over at most ``cap`` rows."""
    counts: Counter[str] = Counter()
    seen = 0
    for row in rows:
        if seen >= cap:
            return FlagCounts(dict(counts.most_common()), seen, False)
        seen += 1
        counts.update({flag.kind for flag in row_flags(row)})
    return FlagCounts(dict(counts.most_common()), seen, True)
