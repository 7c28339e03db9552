"""Candidate preference pairs from one bronze record, for each preference format.

A record yields zero or more *candidate pairs* (prompt, chosen, rejected as canonical
messages). A record that cannot yield any — not JSON, a missing field, one rated
completion — raises a :class:`~posttrain.platform.errors.RecordError`, and becomes a
record-level rejection; the checks on each candidate pair come later, in
:mod:`posttrain.platform.preference.build`.

Formats (:class:`~posttrain.platform.ingest.formats.ChatFormat`):

- ``trl_preference``: TRL's explicit-prompt layout, ``{"prompt", "chosen", "rejected"}``,
  each a string (prompt = one user turn, sides = one assistant turn) or a message list.
- ``transcript_pair``: TRL's implicit-prompt layout, two whole conversations
  ``{"chosen", "rejected"}``; their longest shared prefix of messages is the prompt.
- ``rated_completions``: UltraFeedback-style, one prompt (``prompt`` or ``instruction``)
  and ``completions``, each ``{"response", "score"}`` (``overall_score`` and ``rating``
  are read too); pairs are formed by a :class:`PairingRule`.
- ``judgment``: ``{"chosen_record_id", "rejected_record_id", "margin"?}`` naming two
  bronze chat records judged later; their shared prefix is the prompt.

Example:
    >>> pairs = candidate_pairs('{"prompt": "2+2?", "chosen": "4", "rejected": "5"}',
    ...     ChatFormat.TRL_PREFERENCE, "r1", PairingConfig())
    >>> [m["content"] for m in pairs[0].chosen]
    ['4']
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import RecordError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.messages import Message, Role, make_message
from posttrain.platform.schemas import RejectionReason
from posttrain.platform.silver.parse import decode_record, malformed, parse_openai_message


class PairingRule(StrEnum):
    """How rated completions of one prompt become pairs (stored in ``pairing_rule``)."""

    BEST_VS_WORST = "best_vs_worst"  # one pair: highest score against lowest
    BEST_VS_EACH = "best_vs_each"  # the best against every lower-scored completion
    ALL_ABOVE_MARGIN = "all_above_margin"  # every pair whose score gap reaches min_margin


AS_GIVEN = "as_given"  # pairing_rule of a pair that arrived as a pair
JUDGMENT_RULE = "judgment"  # pairing_rule of a pair from a judgment


class PairingConfig(FrozenConfig):
    """How rated completions are paired; its hash is part of silver.preferences' lineage."""

    rule: PairingRule = PairingRule.BEST_VS_WORST
    min_margin: float = Field(default=0.0, ge=0.0)
    """A pair needs chosen's score above rejected's by more than 0 and at least this."""


@dataclass(frozen=True)
class Candidate:
    """One candidate pair, before the pair checks."""

    pair_id: str
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    margin: float | None
    pairing_rule: str
    chosen_record_id: str | None
    rejected_record_id: str | None


def pair_id(*parts: object) -> str:
    """A stable id: the SHA-256 of the parts joined by ``|``."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _messages(value: Any, default_role: Role, what: str) -> list[Message]:
    """A string (one ``default_role`` turn) or a list of OpenAI messages."""
    if isinstance(value, str):
        return [make_message(default_role, value)]
    if isinstance(value, list):
        return [parse_openai_message(raw, f"{what} message {i}") for i, raw in enumerate(value, 1)]
    found = "null" if value is None else type(value).__name__
    raise malformed(f"{what!r} must be a string or a list of messages, found {found}")


def _field(record: Mapping[str, Any], fmt: ChatFormat, *keys: str) -> Any:
    for key in keys:
        if key in record:
            return record[key]
    names = " or ".join(repr(key) for key in keys)
    raise malformed(f"{fmt.value} record has no {names} (keys: {', '.join(map(repr, record))})")


def _same(a: Message, b: Message) -> bool:
    return a == b


def split_shared_prefix(
    chosen: Sequence[Message], rejected: Sequence[Message]
) -> tuple[list[Message], list[Message], list[Message]]:
    """``(prompt, chosen_rest, rejected_rest)``: the longest shared prefix of messages, as
    TRL's ``extract_prompt`` does, cut back so the prompt never ends on an assistant turn
    both sides share only partly (the sides then start with the first differing turn)."""
    shared = 0
    for a, b in zip(chosen, rejected, strict=False):
        if not _same(a, b):
            break
        shared += 1
    if shared == len(chosen) and shared == len(rejected):
        # Identical transcripts: keep the last turn on both sides so the check names it.
        shared = max(0, shared - 1)
    return list(chosen[:shared]), list(chosen[shared:]), list(rejected[shared:])


def _trl(record: Mapping[str, Any], record_id: str) -> list[Candidate]:
    fmt = ChatFormat.TRL_PREFERENCE
    prompt = _messages(_field(record, fmt, "prompt"), Role.USER, "prompt")
    chosen = _messages(_field(record, fmt, "chosen"), Role.ASSISTANT, "chosen")
    rejected = _messages(_field(record, fmt, "rejected"), Role.ASSISTANT, "rejected")
    margin = _score(record.get("margin"), "margin") if "margin" in record else None
    return [
        Candidate(
            pair_id(record_id, AS_GIVEN),
            prompt,
            chosen,
            rejected,
            margin,
            AS_GIVEN,
            record_id,
            record_id,
        )
    ]


def _transcripts(record: Mapping[str, Any], record_id: str) -> list[Candidate]:
    fmt = ChatFormat.TRANSCRIPT_PAIR
    chosen = _messages(_field(record, fmt, "chosen"), Role.ASSISTANT, "chosen")
    rejected = _messages(_field(record, fmt, "rejected"), Role.ASSISTANT, "rejected")
    prompt, chosen_rest, rejected_rest = split_shared_prefix(chosen, rejected)
    margin = _score(record.get("margin"), "margin") if "margin" in record else None
    return [
        Candidate(
            pair_id(record_id, AS_GIVEN),
            prompt,
            chosen_rest,
            rejected_rest,
            margin,
            AS_GIVEN,
            record_id,
            record_id,
        )
    ]


def _score(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise malformed(f"{what} must be a finite number, found {value!r}")
    return float(value)


_RESPONSE_KEYS = ("response", "completion", "text", "content")
_SCORE_KEYS = ("score", "overall_score", "rating")


def _completion(raw: Any, index: int) -> tuple[list[Message], float]:
    what = f"completion {index}"
    if not isinstance(raw, Mapping):
        raise malformed(f"{what} must be an object with a response and a score")
    response = next((raw[key] for key in _RESPONSE_KEYS if key in raw), None)
    score = next((raw[key] for key in _SCORE_KEYS if key in raw), None)
    if response is None:
        raise malformed(f"{what} has no {' or '.join(map(repr, _RESPONSE_KEYS))}")
    if score is None:
        raise malformed(f"{what} has no {' or '.join(map(repr, _SCORE_KEYS))}")
    return _messages(response, Role.ASSISTANT, what), _score(score, f"{what} score")


def rated_pairs(scores: Sequence[float], config: PairingConfig) -> list[tuple[int, int]]:
    """``(chosen, rejected)`` completion positions that ``config`` pairs.

    Ties go to the earlier completion. A pair needs a positive score gap of at least
    ``config.min_margin``.

    Example:
        >>> rated_pairs([9, 4, 2], PairingConfig(rule=PairingRule.BEST_VS_EACH))
        [(0, 1), (0, 2)]
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if not order:
        return []
    best, worst = order[0], order[-1]
    if config.rule is PairingRule.BEST_VS_WORST:
        candidates = [(best, worst)]
    elif config.rule is PairingRule.BEST_VS_EACH:
        candidates = [(best, other) for other in order[1:]]
    else:
        candidates = [(a, b) for n, a in enumerate(order) for b in order[n + 1 :]]
    return [
        (a, b)
        for a, b in candidates
        if scores[a] - scores[b] > 0 and scores[a] - scores[b] >= config.min_margin
    ]


def _rated(record: Mapping[str, Any], record_id: str, config: PairingConfig) -> list[Candidate]:
    fmt = ChatFormat.RATED_COMPLETIONS
    prompt = _messages(_field(record, fmt, "prompt", "instruction"), Role.USER, "prompt")
    system = record.get("system")
    if isinstance(system, str) and system:
        prompt = [make_message(Role.SYSTEM, system), *prompt]
    completions = _field(record, fmt, "completions")
    if not isinstance(completions, list):
        raise malformed("'completions' must be a list of {response, score} objects")
    parsed = [_completion(raw, i) for i, raw in enumerate(completions, start=1)]
    scores = [score for _, score in parsed]
    pairs = rated_pairs(scores, config)
    if not pairs:
        raise RecordError(
            RejectionReason.NO_PAIRS,
            f"{len(parsed)} completion(s) with scores {scores}: no pair under {config.rule.value} "
            f"with a score gap above 0 and at least {config.min_margin}",
        )
    return [
        Candidate(
            pair_id(record_id, config.rule.value, a, b),
            prompt,
            parsed[a][0],
            parsed[b][0],
            scores[a] - scores[b],
            config.rule.value,
            record_id,
            record_id,
        )
        for a, b in pairs
    ]


def _judgment(
    record: Mapping[str, Any], record_id: str, conversations: Mapping[str, list[Message]]
) -> list[Candidate]:
    fmt = ChatFormat.JUDGMENT
    ids = []
    for key in ("chosen_record_id", "rejected_record_id"):
        value = _field(record, fmt, key)
        if not isinstance(value, str):
            raise malformed(f"{key!r} must be a record id string, found {value!r}")
        if value not in conversations:
            raise RecordError(
                RejectionReason.UNKNOWN_RECORD,
                f"{key} {value} is not a parseable chat record in bronze.records",
            )
        ids.append(value)
    prompt, chosen, rejected = split_shared_prefix(conversations[ids[0]], conversations[ids[1]])
    margin = _score(record["margin"], "margin") if record.get("margin") is not None else None
    return [
        Candidate(
            pair_id(record_id, JUDGMENT_RULE, *ids),
            prompt,
            chosen,
            rejected,
            margin,
            JUDGMENT_RULE,
            ids[0],
            ids[1],
        )
    ]


def candidate_pairs(
    payload: str,
    fmt: ChatFormat,
    record_id: str,
    config: PairingConfig,
    conversations: Mapping[str, list[Message]] | None = None,
) -> list[Candidate]:
    """The candidate pairs of one bronze payload in preference format ``fmt``.

    Args:
        payload: the bronze record's JSON text.
        fmt: its format (a preference format).
        record_id: the bronze record's id (part of each pair id).
        config: how rated completions are paired.
        conversations: parsed chat records by record id, for judgments.

    Raises:
        RecordError: ``malformed`` (not JSON, a missing or mistyped field), ``no_pairs``,
            or ``unknown_record`` (a judgment naming a record that is not there).
    """
    record = decode_record(payload)
    if fmt is ChatFormat.TRL_PREFERENCE:
        return _trl(record, record_id)
    if fmt is ChatFormat.TRANSCRIPT_PAIR:
        return _transcripts(record, record_id)
    if fmt is ChatFormat.RATED_COMPLETIONS:
        return _rated(record, record_id, config)
    if fmt is ChatFormat.JUDGMENT:
        return _judgment(record, record_id, conversations or {})
    raise malformed(f"{fmt.value} is not a preference format")
