"""Realistic edits that turn a conversation into a near duplicate of itself.

Each edit changes the longest turn (or the assistant's answer) the way copies drift in
the wild: a few typos, two sentences swapped, boilerplate added, the end cut off. An edit
returns ``None`` when the conversation offers nothing to edit.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable

from sample_data.model import Conversation, Msg

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
OPENERS = ["Sure! ", "Great question! ", "Of course. ", "Happy to help! "]
CLOSERS = [
    "\n\nI hope this helps! Let me know if you have any other questions.",
    "\n\nFeel free to ask if anything is unclear.",
    "\n\nLet me know if you'd like a more detailed explanation.",
]


def _longest(
    conversation: Conversation, roles: tuple[str, ...] = ("user", "assistant")
) -> Msg | None:
    turns = [m for m in conversation if m["role"] in roles and m.get("content")]
    return max(turns, key=lambda m: len(m["content"]), default=None)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swapped letters
    if kind == 1:
        return word[:i] + word[i + 1 :]  # dropped letter
    return word[:i] + word[i] + word[i:]  # doubled letter


def typos(conversation: Conversation, rng: random.Random) -> Conversation | None:
    """One typo per ~60 words of the longest turn, in words of five letters or more."""
    edited = copy.deepcopy(conversation)
    turn = _longest(edited)
    if turn is None:
        return None
    parts = re.split(r"(\s+)", turn["content"])
    eligible = [i for i, part in enumerate(parts) if part.isalpha() and len(part) >= 5]
    wanted = max(1, len(turn["content"].split()) // 60)
    if len(eligible) < wanted:
        return None
    for i in rng.sample(eligible, wanted):
        parts[i] = _typo(parts[i], rng)
    turn["content"] = "".join(parts)
    return edited


def reorder(conversation: Conversation, rng: random.Random) -> Conversation | None:
    """Swap two adjacent sentences (or lines, in line-oriented text) of the longest turn."""
    edited = copy.deepcopy(conversation)
    turn = _longest(edited)
    if turn is None:
        return None
    sentences = _SENTENCE_END.split(turn["content"])
    joiner = " "
    if len(sentences) < 3:
        sentences, joiner = turn["content"].split("\n"), "\n"
    pairs = [
        i
        for i in range(len(sentences) - 1)
        if sentences[i].strip() and sentences[i + 1].strip() and sentences[i] != sentences[i + 1]
    ]
    if not pairs:
        return None
    i = rng.choice(pairs)
    sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
    turn["content"] = joiner.join(sentences)
    return edited


def boilerplate(conversation: Conversation, rng: random.Random) -> Conversation | None:
    """A polite opener and/or closer around the first assistant answer."""
    edited = copy.deepcopy(conversation)
    answers = [m for m in edited if m["role"] == "assistant" and m.get("content")]
    if not answers:
        return None
    answer = answers[0]
    style = rng.randrange(3)
    if style in (0, 2):
        answer["content"] = rng.choice(OPENERS) + answer["content"]
    if style in (1, 2):
        answer["content"] += rng.choice(CLOSERS)
    return edited


def truncate(conversation: Conversation, rng: random.Random) -> Conversation | None:
    """Cut the end off the last assistant answer, as a copy that hit a length limit."""
    edited = copy.deepcopy(conversation)
    answers = [m for m in edited if m["role"] == "assistant" and m.get("content")]
    if not answers:
        return None
    answer = answers[-1]
    words = answer["content"].split(" ")
    total_words = sum(len((m.get("content") or "").split()) for m in edited)
    cut = max(1, round(total_words * rng.uniform(0.04, 0.1)))
    if cut >= len(words):
        return None
    answer["content"] = " ".join(words[:-cut])
    return edited


EDITS: dict[str, Callable[[Conversation, random.Random], Conversation | None]] = {
    "typos": typos,
    "reordered": reorder,
    "boilerplate": boilerplate,
    "truncated": truncate,
}
