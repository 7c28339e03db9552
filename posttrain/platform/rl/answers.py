"""Pull the final answer, a number or a code block out of a model's free-text completion.

Models state answers in many ways: ``\\boxed{42}``, ``**Answer:** $1,250.00``, "The answer is
3/4.", or a number on the last line. :func:`final_answer` finds the part that is the
answer; :func:`parse_number` reads one number from it; :func:`code_block` finds the code a
model wrote for a programming task.
"""

from __future__ import annotations

import re
from fractions import Fraction

# "**Answer:** 74", "Final answer: 3/4", "the answer is 12" (markdown removed first).
_ANSWER_MARKER = re.compile(r"(?:final\s+)?answer\s*(?:is\b)?\s*[:：=]?\s*", re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`")
_BOXED = "\\boxed{"

# A number as people write it: sign, optional currency, thousands separators, decimals, an
# optional "/denominator"; not a piece of a word or of a longer number.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−–]?)\s?\$?\s?"
    r"(?P<int>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?(?![\w])"
)

_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)```", re.DOTALL)


def boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (nested braces allowed), if any."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for index in range(begin, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:index]
    return None


def final_answer(text: str) -> str:
    r"""The part of ``text`` that states the answer.

    The last ``\boxed{}``; else what follows the last "answer:" / "answer is" on its line;
    else the last non-empty line.

    Example:
        >>> final_answer("Sum = 2 + 2.\n\n**Answer:** 4 apples")
        '4 apples'
    """
    inside = boxed(text)
    if inside is not None:
        return inside.strip()
    plain = _MARKDOWN.sub("", text)
    markers = list(_ANSWER_MARKER.finditer(plain))
    for marker in reversed(markers):
        rest = plain[marker.end() :].split("\n", 1)[0].strip()
        if rest:
            return rest
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def states_answer(text: str) -> bool:
    r"""Whether ``text`` marks a final answer (``\boxed{}`` or "answer:")."""
    return boxed(text) is not None or _ANSWER_MARKER.search(_MARKDOWN.sub("", text)) is not None


def numbers(text: str) -> list[Fraction]:
    """Every number written in ``text``, in order (``3/4`` is one number)."""
    found = []
    for match in _NUMBER.finditer(text):
        value = Fraction(match["int"].replace(",", ""))
        if match["den"]:
            denominator = Fraction(match["den"])
            if denominator == 0:
                continue
            value /= denominator
        found.append(-value if match["sign"] else value)
    return found


def parse_number(text: str) -> float | None:
    r"""The number a completion gives as its answer, or ``None`` when it gives none.

    The first number of the :func:`final_answer` when the completion marks its answer
    (``\boxed{}`` or "answer:"), otherwise the last number of the whole text.

    Example:
        >>> parse_number("Total = 3 × $12.\n**Answer:** $1,036.50")
        1036.5
        >>> parse_number("so she has 3/4 of the cake left")
        0.75
    """
    if states_answer(text):
        found = numbers(final_answer(text))
        if found:
            return float(found[0])
    found = numbers(_MARKDOWN.sub("", text))
    return float(found[-1]) if found else None


def code_block(text: str, entry_point: str | None = None) -> str:
    """The code a completion wrote: a fenced block (the one defining ``entry_point`` when
    there are several), or the whole text when it has no fence."""
    blocks = [match["body"] for match in _FENCE.finditer(text)]
    if not blocks:
        return text
    if entry_point:
        defining = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
        for block in blocks:
            if defining.search(block):
                return block
    return blocks[0]
