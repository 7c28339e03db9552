"""What the capture service accepts: sessions, single turns and outcomes, and its answers.

Conversations are in the OpenAI chat format (``messages`` with ``tool_calls`` and ``tool``
results); image and file parts are kept as references: a ``data:`` URI inlined by the
client is replaced by ``sha256:<hex>`` and its size before anything is written, so bronze
never holds the bytes.

Identity: every event carries a client ``id``. A session is keyed by its ``session_id``
(default: its ``id``), a turn by ``session_id`` and ``turn_id`` (default: its ``id``), an
outcome by its ``id``; the key, hashed with the workspace, is the bronze ``record_id``
(sessions and turns) or the dedupe key of the outcome, so a retried event is a duplicate.
An outcome names the session (and optionally the turn) it is about by those same client
ids, so it may arrive any time later, even before the session.

Example:
    >>> event = parse_event({"type": "session", "id": "s1",
    ...                      "messages": [{"role": "user", "content": "hi"}]})
    >>> capture_record_id("team-a", "session", "s1") == event.record_id("team-a")
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

# Longest client id, session id, turn id or source name accepted.
MAX_ID_CHARS = 256


class AckStatus(StrEnum):
    """What happened to one event of a batch."""

    ACCEPTED = "accepted"  # in the fsync'd write-ahead log; it will reach bronze
    DUPLICATE = "duplicate"  # this workspace sent the same key before; stored once
    REFUSED = "refused"  # not stored; ``reason`` says why


class EventAck(BaseModel):
    """The answer for one event, in the order the events were sent."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="0-based position of the event in the batch.")
    id: str | None = Field(description="The event's client id, when it had one.")
    status: AckStatus
    reason: str | None = Field(default=None, description="Why the event was refused.")
    record_id: str | None = Field(
        default=None, description="The bronze record_id of a session or turn, once stored."
    )


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


# The message types are TypedDicts, not models: validating a session's messages as
# models costs about seven times as much (an instance and an extras dict per message),
# which was most of the service's CPU per event. Unknown keys are kept as sent (bronze
# holds the record as received).
_OPEN = ConfigDict(extra="allow")


class FunctionCall(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    name: str
    arguments: Annotated[str, Field(description="JSON text, as in the OpenAI API.")]


class ToolCall(TypedDict):
    __pydantic_config__ = _OPEN  # type: ignore[misc]
    id: NotRequired[str | None]
    type: NotRequired[str]
    function: FunctionCall


class ContentPart(TypedDict):
    """A part of a message's content: ``text``, ``image_url``, ``input_audio`` or ``file``."""

    __pydantic_config__ = _OPEN  # type: ignore[misc]
    type: str


class ChatMessage(TypedDict):
    """One message in the OpenAI chat format (system, user, assistant, tool, developer)."""

    __pydantic_config__ = _OPEN  # type: ignore[misc]
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: NotRequired[str | list[ContentPart] | None]
    name: NotRequired[str | None]
    tool_calls: NotRequired[list[ToolCall] | None]
    tool_call_id: NotRequired[str | None]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Id = Field(description="The client's id of this event; a retry sends the same id.")
    source: Id = Field(default="capture", description="The agent or product that sent it.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form JSON kept beside the event."
    )

    def key(self) -> tuple[str, ...]:
        """What makes two events the same event (a retry) within a workspace."""
        raise NotImplementedError

    def record_id(self, workspace: str) -> str:
        """The bronze ``record_id`` (sessions, turns) or dedupe key (outcomes) in ``workspace``."""
        return capture_record_id(workspace, *self.key())


class SessionEvent(_Event):
    """A whole agent session (a conversation), usually sent once when it ends."""

    type: Literal["session"]
    session_id: Id | None = Field(default=None, description="Defaults to the event id.")
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = Field(default=None, description="Tools offered.")
    model: str | None = None

    def key(self) -> tuple[str, ...]:
        return ("session", self.session_id or self.id)


class TurnEvent(_Event):
    """One model call of a session: the messages sent and the message returned."""

    type: Literal["turn"]
    session_id: Id
    turn_id: Id | None = Field(default=None, description="Defaults to the event id.")
    messages: list[ChatMessage] = Field(min_length=1, description="Request messages.")
    response: ChatMessage | None = Field(default=None, description="The message returned.")
    tools: list[dict[str, Any]] | None = None
    model: str | None = None

    def key(self) -> tuple[str, ...]:
        return ("turn", self.session_id, self.turn_id or self.id)


class OutcomeKind(StrEnum):
    """The signals an outcome carries, and the ``bronze.outcomes`` kind each becomes."""

    REWARD = "reward"
    TEST_RESULT = "test_result"
    THUMBS = "thumbs"  # feedback, value +1 (up) or -1 (down)
    FEEDBACK = "feedback"  # free text
    PREFERENCE = "preference"  # this session/turn preferred over ``other``


class Target(BaseModel):
    """The session, or one turn of it, that an outcome is about (client ids)."""

    model_config = ConfigDict(extra="forbid")

    session_id: Id
    turn_id: Id | None = None

    def key(self) -> tuple[str, ...]:
        if self.turn_id is None:
            return ("session", self.session_id)
        return ("turn", self.session_id, self.turn_id)


class OutcomeEvent(_Event):
    """A signal about a session or a turn that arrived later."""

    type: Literal["outcome"]
    kind: OutcomeKind
    session_id: Id
    turn_id: Id | None = Field(default=None, description="Unset: about the whole session.")
    value: float | bool | Literal["up", "down"] | None = Field(
        default=None, description="reward/test score, test passed, thumbs up/down."
    )
    text: str | None = Field(default=None, description="Feedback text or test output.")
    other: Target | None = Field(
        default=None, description="Preference: the session/turn this one was preferred over."
    )

    def key(self) -> tuple[str, ...]:
        return ("outcome", self.id)

    def target(self) -> Target:
        return Target(session_id=self.session_id, turn_id=self.turn_id)


CaptureEvent = Annotated[SessionEvent | TurnEvent | OutcomeEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[SessionEvent | TurnEvent | OutcomeEvent] = TypeAdapter(CaptureEvent)


class EventBatch(BaseModel):
    """The body of ``POST /v1/events``: up to the service's limit of events, any types."""

    model_config = ConfigDict(extra="forbid")

    events: list[CaptureEvent]


class BatchAnswer(BaseModel):
    """The answer to a batch: one ack per event, in order, and the counts."""

    accepted: int
    duplicate: int
    refused: int
    acks: list[EventAck]


class EventError(ValueError):
    """An event does not match its schema; the message says where and what was expected."""


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "event"


def describe_validation(exc: ValidationError) -> str:
    """One line naming the first bad field and what was expected (and how many more)."""
    first = exc.errors()[0]
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{_where(first['loc'])}: {first['msg']}{more}"


def parse_event(raw: Any) -> SessionEvent | TurnEvent | OutcomeEvent:
    """Validate one event given as decoded JSON.

    Raises:
        EventError: not an object, an unknown ``type``, or a field of the wrong shape.
    """
    if not isinstance(raw, Mapping):
        raise EventError(f"an event must be a JSON object, found {type(raw).__name__}")
    if raw.get("type") not in ("session", "turn", "outcome"):
        raise EventError(f"'type' must be session, turn or outcome, found {raw.get('type')!r}")
    try:
        return EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise EventError(describe_validation(exc)) from None


def capture_record_id(workspace: str, *key: str) -> str:
    """The id of a captured event: 32 hex digits of SHA-256 over workspace and key."""
    encoded = "\0".join(("capture", workspace, *key))
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def dereference_inline_data(value: Any) -> tuple[Any, int]:
    """``value`` with every inlined ``data:`` URI replaced by ``sha256:<hex>`` and its size.

    Returns the new value and how many were replaced. Non-``data:`` URLs (references the
    client keeps itself) are left alone.
    """
    if isinstance(value, str):
        if value.startswith("data:") and "," in value[:256]:
            header, _, body = value.partition(",")
            try:
                blob = (
                    base64.b64decode(body, validate=False)
                    if header.endswith(";base64")
                    else body.encode()
                )
            except (binascii.Error, ValueError):
                blob = body.encode()
            media = header.removeprefix("data:").split(";", 1)[0] or "application/octet-stream"
            digest = hashlib.sha256(blob).hexdigest()
            return f"sha256:{digest};type={media};bytes={len(blob)}", 1
        return value, 0
    if isinstance(value, list):
        replaced = 0
        items = []
        for item in value:
            new, count = dereference_inline_data(item)
            items.append(new)
            replaced += count
        return items, replaced
    if isinstance(value, dict):
        replaced = 0
        out = {}
        for key, item in value.items():
            new, count = dereference_inline_data(item)
            out[key] = new
            replaced += count
        return out, replaced
    return value, 0
