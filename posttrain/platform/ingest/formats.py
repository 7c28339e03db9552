"""The chat formats posttrain ingests, and how a record's or a file's format is detected.

A record's format follows from its keys; a file's format is the majority over its first
decodable records, so one odd record does not change how the whole file is parsed.

Example:
    >>> detect_format({"conversations": [{"from": "human", "value": "hi"}]})
    <ChatFormat.SHAREGPT: 'sharegpt'>
    >>> majority_format([{"prompt": "2+2?", "completion": "4"}, {"text": "?"}])
    <ChatFormat.PROMPT_COMPLETION: 'prompt_completion'>
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class ChatFormat(StrEnum):
    """A record layout (chat or preference); the value is what ``bronze.records.format`` stores.

    Chat formats become ``silver.conversations``; preference formats (see
    :data:`PREFERENCE_FORMATS`) become ``silver.preferences``.
    """

    OPENAI = "openai"  # {"messages": [{"role", "content", "tool_calls"?, ...}]}
    SHAREGPT = "sharegpt"  # {"conversations": [{"from", "value"}]}
    ALPACA = "alpaca"  # {"instruction", "input"?, "output"}
    PROMPT_COMPLETION = "prompt_completion"  # {"prompt", "completion"}
    # An RL rollout: {"prompt_id", "completion", "checkpoint", "reward"?, "sampling"?}; the
    # rl group's silver.rollouts reads it (posttrain.platform.rl.rollouts), not silver.
    ROLLOUT = "rollout"

    # Preference formats:
    JUDGMENT = "judgment"  # {"chosen_record_id", "rejected_record_id", ...}
    TRL_PREFERENCE = "trl_preference"  # {"prompt", "chosen", "rejected"}: strings or messages
    RATED_COMPLETIONS = "rated_completions"  # {"prompt"|"instruction", "completions": [...]}
    TRANSCRIPT_PAIR = "transcript_pair"  # {"chosen", "rejected"}: whole conversations


# Checked in this order (rollout first, then the preference formats), so a record carrying
# the keys of two formats gets the first: their keys are more specific than the chat formats'.
FORMAT_KEYS: dict[ChatFormat, tuple[str, ...]] = {
    ChatFormat.JUDGMENT: ("chosen_record_id", "rejected_record_id"),
    ChatFormat.TRL_PREFERENCE: ("prompt", "chosen", "rejected"),
    ChatFormat.RATED_COMPLETIONS: ("completions",),
    ChatFormat.TRANSCRIPT_PAIR: ("chosen", "rejected"),
    ChatFormat.OPENAI: ("messages",),
    ChatFormat.SHAREGPT: ("conversations",),
    ChatFormat.ALPACA: ("instruction", "output"),
    ChatFormat.PROMPT_COMPLETION: ("prompt", "completion"),
    ChatFormat.ROLLOUT: ("prompt_id", "completion"),
}
# A rollout may carry its "prompt" too: its keys are checked first, being the more specific.
_DETECTION_ORDER = [
    ChatFormat.ROLLOUT,
    *(fmt for fmt in FORMAT_KEYS if fmt is not ChatFormat.ROLLOUT),
]

PREFERENCE_FORMATS = frozenset(
    {
        ChatFormat.JUDGMENT,
        ChatFormat.TRL_PREFERENCE,
        ChatFormat.RATED_COMPLETIONS,
        ChatFormat.TRANSCRIPT_PAIR,
    }
)
CHAT_FORMATS = frozenset(ChatFormat) - PREFERENCE_FORMATS - {ChatFormat.ROLLOUT}


def describe_format(fmt: ChatFormat) -> str:
    """``fmt`` and its identifying keys for messages: ``alpaca ('instruction', 'output')``."""
    keys = ", ".join(repr(key) for key in FORMAT_KEYS[fmt])
    return f"{fmt.value} ({keys})"


def matching_formats(record: Any) -> list[ChatFormat]:
    """Every format whose identifying keys ``record`` has, in detection order."""
    if not isinstance(record, Mapping):
        return []
    return [fmt for fmt in _DETECTION_ORDER if all(key in record for key in FORMAT_KEYS[fmt])]


def detect_format(record: Any) -> ChatFormat | None:
    """The format of one decoded record, judged by its keys; ``None`` if none fits.

    Example:
        >>> detect_format({"instruction": "Add 2 and 3.", "input": "", "output": "5"})
        <ChatFormat.ALPACA: 'alpaca'>
        >>> detect_format(["not", "an", "object"]) is None
        True
    """
    matches = matching_formats(record)
    return matches[0] if matches else None


def json_error(exc: json.JSONDecodeError) -> str:
    """json's own wording with the position, e.g. ``Expecting ',' delimiter at char 41``."""
    return f"{exc.msg.removesuffix(' at')} at char {exc.pos}"


def majority_format(records: Iterable[Any]) -> ChatFormat | None:
    """The most common detected format among ``records``; ties go to the earlier format.

    Records whose format cannot be detected do not vote. ``None`` when none can be.
    """
    votes = Counter(fmt for fmt in map(detect_format, records) if fmt is not None)
    if not votes:
        return None
    order = list(ChatFormat)
    return max(votes, key=lambda fmt: (votes[fmt], -order.index(fmt)))
