"""Quality filters for parsed conversations, and the silver step that applies them.

Each filter judges one conversation (a list of :class:`~posttrain.platform.messages.Message`)
and returns ``None`` to keep it or a :class:`~posttrain.platform.errors.RecordError` whose
reason is a :class:`~posttrain.platform.schemas.RejectionReason` and whose detail names
the turn and the limit, e.g. ``turn 4: 'user' message has 150,000 characters; expected at
most 100,000 (max_message_chars)``. :class:`QualityStep` applies them in a fixed order to
an Arrow batch; the first failing filter gives the rejection reason.

Characters are counted as a message's content plus the name and JSON arguments of its tool
calls, so an assistant turn that only calls a tool still has a size.

Example:
    >>> from posttrain.platform.messages import make_message
    >>> judge_conversation([make_message("user", "hi")], default_filters(QualityConfig()))
    RecordError('invalid_roles: conversation has no assistant turn; expected at least one')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import Field, model_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import RecordError
from posttrain.platform.messages import Message, Role
from posttrain.platform.schemas import RejectionReason
from posttrain.platform.silver._columns import MESSAGES_COLUMN, as_table, require_messages
from posttrain.platform.silver.roles import role_order_problem
from posttrain.platform.steps import RecordStep, StepResult


class QualityConfig(FrozenConfig):
    """Limits of :class:`QualityStep`. The defaults suit general SFT chat data.

    They only remove records that are useless or pathological whatever the trainer's
    context length; fitting a model's sequence length is gold's job, after tokenization.
    """

    min_conversation_chars: int = Field(default=10, ge=0)
    """Below this the whole exchange is a fragment ("hi" / "hello" has 7, "test" / "ok" 6),
    while the shortest useful question and answer ("What is 2+2?" / "4." has 14) pass."""

    min_assistant_chars: int = Field(default=2, ge=0)
    """Below this the answers, summed over assistant turns, say nothing. Terse but real
    answers such as "4." or "Paris." pass; a lone character or "." does not."""

    max_conversation_chars: int = Field(default=200_000, gt=0)
    """About 50k tokens at ~4 characters per token: above the 32k-token contexts common
    in SFT, so nothing a trainer could still use is dropped here."""

    max_message_chars: int = Field(default=100_000, gt=0)
    """One message this long is a pasted dump (logs, a whole file, base64), not dialogue."""

    max_turns: int = Field(default=512, gt=0)
    """Messages, tool results included. Long agent traces (200 tool round trips) fit;
    beyond that a trace is almost always a loop."""

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> QualityConfig:
        if self.min_conversation_chars > self.max_conversation_chars:
            raise ValueError(
                f"min_conversation_chars ({self.min_conversation_chars}) exceeds "
                f"max_conversation_chars ({self.max_conversation_chars})"
            )
        if self.max_message_chars > self.max_conversation_chars:
            raise ValueError(
                f"max_message_chars ({self.max_message_chars}) exceeds "
                f"max_conversation_chars ({self.max_conversation_chars})"
            )
        return self


def message_chars(message: Message) -> int:
    """Characters of a message: its content plus the name and arguments of its tool calls."""
    size = len(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        size += len(function.get("name") or "") + len(function.get("arguments") or "")
    return size


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


class ConversationFilter(ABC):
    """Judges one conversation; subclasses keep only the limits they need (picklable)."""

    @abstractmethod
    def check(self, messages: Sequence[Message]) -> RecordError | None:
        """``None`` to keep the conversation, or the error that rejects it."""


@dataclass(frozen=True)
class EmptyFilter(ConversationFilter):
    """Rejects a conversation with nothing to learn from.

    Empty means: no messages; every message blank with no tool calls; a ``user`` turn
    that is blank; or an ``assistant`` turn with neither content nor tool calls. Blank
    ``system`` and ``tool`` turns are allowed (no system prompt; a tool that returned
    nothing).
    """

    def check(self, messages: Sequence[Message]) -> RecordError | None:
        if not messages:
            return RecordError(RejectionReason.EMPTY, "conversation has no messages")
        if all(_is_blank(m.get("content")) and not m.get("tool_calls") for m in messages):
            return RecordError(RejectionReason.EMPTY, f"all {len(messages)} messages are blank")
        for turn, message in enumerate(messages, start=1):
            if not _is_blank(message.get("content")):
                continue
            if message.get("role") == Role.USER:
                return RecordError(RejectionReason.EMPTY, f"turn {turn}: 'user' message is blank")
            if message.get("role") == Role.ASSISTANT and not message.get("tool_calls"):
                return RecordError(
                    RejectionReason.EMPTY,
                    f"turn {turn}: 'assistant' message has neither content nor tool calls",
                )
        return None


@dataclass(frozen=True)
class RoleOrderFilter(ConversationFilter):
    """Rejects turns out of order; the rules are in :mod:`posttrain.platform.silver.roles`."""

    def check(self, messages: Sequence[Message]) -> RecordError | None:
        problem = role_order_problem(messages)
        return None if problem is None else RecordError(RejectionReason.INVALID_ROLES, problem)


@dataclass(frozen=True)
class TooShortFilter(ConversationFilter):
    """Rejects a conversation, or its assistant part, below a character count."""

    min_conversation_chars: int
    min_assistant_chars: int

    def check(self, messages: Sequence[Message]) -> RecordError | None:
        total = sum(message_chars(m) for m in messages)
        if total < self.min_conversation_chars:
            return RecordError(
                RejectionReason.TOO_SHORT,
                f"conversation has {total:,} characters; expected at least "
                f"{self.min_conversation_chars:,} (min_conversation_chars)",
            )
        assistant = sum(message_chars(m) for m in messages if m.get("role") == Role.ASSISTANT)
        if assistant < self.min_assistant_chars:
            return RecordError(
                RejectionReason.TOO_SHORT,
                f"assistant turns have {assistant:,} characters in all; expected at least "
                f"{self.min_assistant_chars:,} (min_assistant_chars)",
            )
        return None


@dataclass(frozen=True)
class TooLongFilter(ConversationFilter):
    """Rejects too many turns, one oversized message, or an oversized conversation."""

    max_turns: int
    max_message_chars: int
    max_conversation_chars: int

    def check(self, messages: Sequence[Message]) -> RecordError | None:
        if len(messages) > self.max_turns:
            return RecordError(
                RejectionReason.TOO_LONG,
                f"conversation has {len(messages):,} turns; expected at most "
                f"{self.max_turns:,} (max_turns)",
            )
        total = 0
        for turn, message in enumerate(messages, start=1):
            size = message_chars(message)
            if size > self.max_message_chars:
                return RecordError(
                    RejectionReason.TOO_LONG,
                    f"turn {turn}: {message.get('role')!r} message has {size:,} characters; "
                    f"expected at most {self.max_message_chars:,} (max_message_chars)",
                )
            total += size
        if total > self.max_conversation_chars:
            return RecordError(
                RejectionReason.TOO_LONG,
                f"conversation has {total:,} characters; expected at most "
                f"{self.max_conversation_chars:,} (max_conversation_chars)",
            )
        return None


def default_filters(config: QualityConfig) -> tuple[ConversationFilter, ...]:
    """The filters of :class:`QualityStep`, in the order they are applied.

    Emptiness comes first (the most specific verdict), then structure, then size: a
    length limit only means something for a well-formed conversation.
    """
    return (
        EmptyFilter(),
        RoleOrderFilter(),
        TooShortFilter(config.min_conversation_chars, config.min_assistant_chars),
        TooLongFilter(config.max_turns, config.max_message_chars, config.max_conversation_chars),
    )


def judge_conversation(
    messages: Sequence[Message] | None, filters: Sequence[ConversationFilter]
) -> RecordError | None:
    """The error of the first filter that rejects ``messages`` (``None`` counts as empty).

    A null message inside the list is ``malformed``: no filter can judge it.
    """
    conversation = messages or []
    for turn, message in enumerate(conversation, start=1):
        if message is None:
            return RecordError(
                RejectionReason.MALFORMED,
                f"turn {turn}: message is null; expected a struct with role and content",
            )
    for conversation_filter in filters:
        error = conversation_filter.check(conversation)
        if error is not None:
            return error
    return None


class QualityStep(RecordStep):
    """Keeps the conversations every quality filter accepts; rejects the rest with a reason.

    Works on any batch with a ``messages`` column of
    :data:`~posttrain.platform.schemas.MESSAGES_TYPE`; every other column is kept as is.

    Example:
        >>> import pyarrow as pa
        >>> from posttrain.platform.messages import make_message
        >>> from posttrain.platform.schemas import MESSAGES_TYPE
        >>> chat = [make_message("user", "What is 2+2?"), make_message("assistant", "2+2 = 4")]
        >>> batch = pa.table({"record_id": ["a", "b"],
        ...                   "messages": pa.array([chat, []], type=MESSAGES_TYPE)})
        >>> result = QualityStep()(batch)
        >>> result.kept["record_id"].to_pylist(), result.rejected_by_reason
        (['a'], {'empty': 1})
    """

    name = "quality"

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()
        self.filters = default_filters(self.config)

    def check(self, row: Mapping[str, Any]) -> RecordError | None:
        return judge_conversation(row.get(MESSAGES_COLUMN), self.filters)

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        require_messages(table, self.name)
        return super().__call__(table)
