"""Role-order rules: which sequences of turns make a conversation a model can be trained on.

The rules follow what the OpenAI / TRL conversational format and common chat templates
accept, made strict where a looser reading would teach the model something odd. Turns are
numbered from 1 in every message, as a person counts them.

1. Every role is ``system``, ``user``, ``assistant`` or ``tool``; anything else is invalid.
2. At most one ``system`` message, and only as turn 1.
3. The first non-system turn is a ``user`` turn.
4. Only ``assistant`` turns carry tool calls.
5. No two consecutive ``user`` turns, and no two consecutive ``assistant`` turns: a
   conversation alternates; an assistant that speaks twice in a row is a split or
   corrupted record.
6. An assistant turn with tool calls is followed by its ``tool`` results, one per call
   (several calls are answered by consecutive ``tool`` turns). When the calls carry ids
   and a result carries a ``tool_call_id``, it must name one of those calls, and no call
   is answered twice. Every call is answered before the next non-tool turn; without ids
   this is a count (as many results as calls).
7. A ``tool`` turn only follows an assistant turn with tool calls or another ``tool``
   turn, and is followed by another ``tool`` turn or an ``assistant`` turn (the
   assistant reads the results; a ``user`` turn right after them is invalid).
8. The conversation contains an assistant turn and ends with one. A final assistant turn
   may end in unanswered tool calls: function-calling datasets teach exactly that step.

Example:
    >>> from posttrain.platform.messages import make_message
    >>> role_order_problem([make_message("assistant", "hi")])
    "turn 1: 'assistant' message opens the conversation; expected a user turn first"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from posttrain.platform.messages import Message, Role

_KNOWN_ROLES = frozenset(role.value for role in Role)
_KNOWN_ROLES_TEXT = ", ".join(role.value for role in Role)


@dataclass
class _CallBlock:
    """The tool calls of one assistant turn and which of them are still unanswered."""

    turn: int
    calls: int
    unanswered_ids: set[str]
    answered_ids: set[str] = field(default_factory=set)
    results: int = 0

    @property
    def call_ids(self) -> set[str]:
        return self.unanswered_ids | self.answered_ids

    def unanswered_text(self) -> str:
        missing = self.calls - self.results
        ids = ", ".join(repr(call_id) for call_id in sorted(self.unanswered_ids))
        which = f" ({ids})" if ids else ""
        return f"{missing} of the {self.calls} tool calls of turn {self.turn}{which} unanswered"


def _previous_text(role: str | None) -> str:
    return "opens the conversation" if role is None else f"follows a {role!r} message"


def _check_system(turn: int) -> str | None:
    if turn != 1:
        return (
            f"turn {turn}: 'system' message after turn 1; expected at most one system "
            "message, as the first turn"
        )
    return None


def _check_user(turn: int, previous: str | None, block: _CallBlock | None) -> str | None:
    if previous == Role.USER:
        return (
            f"turn {turn}: 'user' message follows a 'user' message; expected an "
            "assistant reply in between"
        )
    if previous == Role.TOOL:
        return (
            f"turn {turn}: 'user' message follows a 'tool' result; expected an "
            "assistant turn that reads the results first"
        )
    if block is not None:
        return (
            f"turn {turn}: 'user' message follows the tool calls of turn {block.turn}; "
            "expected their 'tool' results first"
        )
    return None


def _check_assistant(turn: int, previous: str | None, block: _CallBlock | None) -> str | None:
    if previous is None or previous == Role.SYSTEM:
        return (
            f"turn {turn}: 'assistant' message {_previous_text(previous)}; expected a "
            "user turn first"
        )
    if block is not None and block.results == 0:
        return (
            f"turn {turn}: 'assistant' message follows the tool calls of turn "
            f"{block.turn}; expected their 'tool' results first"
        )
    if block is not None and block.results < block.calls:
        return f"turn {turn}: 'assistant' message leaves {block.unanswered_text()}"
    if previous == Role.ASSISTANT:
        return (
            f"turn {turn}: 'assistant' message follows an 'assistant' message; "
            "expected a user turn in between"
        )
    return None


def _check_tool(
    turn: int, previous: str | None, block: _CallBlock | None, tool_call_id: str | None
) -> str | None:
    if block is None:
        return (
            f"turn {turn}: 'tool' message {_previous_text(previous)}; expected it to "
            "answer an assistant tool call"
        )
    if block.results >= block.calls:
        return (
            f"turn {turn}: 'tool' message is result {block.results + 1} for the "
            f"{block.calls} tool calls of turn {block.turn}; expected one result per call"
        )
    if tool_call_id is None or not block.call_ids:
        return None
    if tool_call_id in block.answered_ids:
        return (
            f"turn {turn}: 'tool' message answers call {tool_call_id!r} of turn "
            f"{block.turn} a second time"
        )
    if tool_call_id not in block.unanswered_ids:
        expected = ", ".join(repr(call_id) for call_id in sorted(block.call_ids))
        return (
            f"turn {turn}: 'tool' message answers call {tool_call_id!r}, which turn "
            f"{block.turn} did not make; expected one of {expected}"
        )
    return None


def _record_result(block: _CallBlock, tool_call_id: str | None) -> None:
    block.results += 1
    if tool_call_id is not None and tool_call_id in block.unanswered_ids:
        block.unanswered_ids.discard(tool_call_id)
        block.answered_ids.add(tool_call_id)


def _check_turn(
    turn: int, message: Message, previous: str | None, block: _CallBlock | None
) -> str | None:
    role = message.get("role")
    if role not in _KNOWN_ROLES:
        return f"turn {turn}: unknown role {role!r}; expected one of {_KNOWN_ROLES_TEXT}"
    if message.get("tool_calls") and role != Role.ASSISTANT:
        return f"turn {turn}: {role!r} message carries tool calls; only assistant turns may"
    if role == Role.SYSTEM:
        return _check_system(turn)
    if role == Role.USER:
        return _check_user(turn, previous, block)
    if role == Role.ASSISTANT:
        return _check_assistant(turn, previous, block)
    return _check_tool(turn, previous, block, message.get("tool_call_id"))


def role_order_problem(messages: Sequence[Message]) -> str | None:
    """Why the turns of ``messages`` are out of order, or ``None`` when they follow the rules.

    The rules are listed in this module's docstring; the first broken one is reported,
    naming the turn and what was expected there.
    """
    previous: str | None = None
    block: _CallBlock | None = None  # the latest assistant tool calls, while being answered
    for turn, message in enumerate(messages, start=1):
        problem = _check_turn(turn, message, previous, block)
        if problem is not None:
            return problem
        role = message["role"]
        if role == Role.TOOL and block is not None:
            _record_result(block, message.get("tool_call_id"))
        else:
            calls = message.get("tool_calls") or []
            ids = {call_id for call in calls if (call_id := call.get("id"))}
            block = _CallBlock(turn, len(calls), ids) if calls else None
        previous = role
    if not any(message["role"] == Role.ASSISTANT for message in messages):
        return "conversation has no assistant turn; expected at least one"
    if previous != Role.ASSISTANT:
        return (
            f"conversation ends with a {previous!r} turn (turn {len(messages)}); "
            "expected it to end with an assistant turn"
        )
    return None
