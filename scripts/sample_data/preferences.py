"""Preference samples: one small deterministic file per preference format, with planted
defects, plus the chat answers the judgments file judges.

Each file's planted defects are listed in ``data/samples/preferences/planted.json`` with
the line and the rejection reason silver.preferences must give.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from posttrain.platform.ingest.bronze import RecordIdentity

FOLDER = "data/samples/preferences"
SOURCES = [
    # (file, source, format)
    ("trl_pairs.jsonl", "pref-trl", "trl_preference"),
    ("transcript_pairs.jsonl", "pref-transcripts", "transcript_pair"),
    ("rated_completions.jsonl", "pref-rated", "rated_completions"),
    ("judged_answers.jsonl", "pref-judged-answers", "openai"),
    ("judgments.jsonl", "pref-judgments", "judgment"),
]
OUTPUTS = [f"{FOLDER}/{name}" for name, _, _ in SOURCES] + [f"{FOLDER}/planted.json"]
CONTAMINATED_PROMPT = (
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other '
    "than\n    given threshold.\n"
    "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n"
    "    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)\n    True\n"
    '    """\n'
)


def _question(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(11, 99), rng.randint(11, 99)
    return f"What is {a} plus {b}? Explain briefly.", a + b


def _good(total: int) -> str:
    return f"Adding the tens and then the ones gives {total}, so the answer is {total}."


def _bad(total: int, rng: random.Random) -> str:
    return f"I think it is about {total + rng.choice([-10, -1, 1, 10])}."


def _trl(rng: random.Random) -> tuple[list[Any], list[dict[str, Any]]]:
    lines: list[Any] = []
    for n in range(24):
        question, total = _question(rng)
        if n % 2:
            lines.append({"prompt": question, "chosen": _good(total), "rejected": _bad(total, rng)})
        else:
            lines.append(
                {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": _good(total)}],
                    "rejected": [{"role": "assistant", "content": _bad(total, rng)}],
                }
            )
    planted = [
        (
            {"prompt": "What is 2 plus 2? Explain.", "chosen": "It is 4.", "rejected": "It is 4."},
            "same_sides",
        ),
        (
            {
                "prompt": "What is 3 plus 3? Explain.",
                "chosen": "It is 6, by counting.",
                "rejected": " ",
            },
            "empty",
        ),
        ({"prompt": "What is 5 plus 5? Explain.", "chosen": "It is 10."}, "malformed"),
        ('{"prompt": "What is 6 plus 6?", "chosen": "12", "rejected"', "malformed"),
        (json.loads(json.dumps(lines[3])), "duplicate_pair"),  # one of the two is refused
        (
            {
                "prompt": "Complete this function:\n" + CONTAMINATED_PROMPT,
                "chosen": "    return any(abs(a - b) < threshold "
                "for a in numbers for b in numbers)",
                "rejected": "    return False",
            },
            "contaminated",
        ),
    ]
    return lines, _plant(lines, planted, rng)


def _transcripts(rng: random.Random) -> tuple[list[Any], list[dict[str, Any]]]:
    lines: list[Any] = []
    system = {"role": "system", "content": "You are a careful arithmetic tutor."}
    for _ in range(16):
        question, total = _question(rng)
        user = {"role": "user", "content": question}
        lines.append(
            {
                "chosen": [system, user, {"role": "assistant", "content": _good(total)}],
                "rejected": [system, user, {"role": "assistant", "content": _bad(total, rng)}],
            }
        )
    same = lines[0]["chosen"]
    planted = [
        (
            {
                "chosen": [
                    {"role": "user", "content": "What is 10 plus 10?"},
                    {"role": "assistant", "content": "It is 20."},
                ],
                "rejected": [
                    {"role": "user", "content": "What is 11 plus 11?"},
                    {"role": "assistant", "content": "It is 21."},
                ],
            },
            "no_shared_prompt",
        ),
        ({"chosen": same, "rejected": same}, "same_sides"),
        ({"chosen": same[:2], "rejected": same}, "empty"),
        ({"chosen": "not a conversation", "rejected": 42}, "malformed"),
    ]
    return lines, _plant(lines, planted, rng)


def _rated(rng: random.Random) -> tuple[list[Any], list[dict[str, Any]]]:
    lines: list[Any] = []
    for _ in range(12):
        question, total = _question(rng)
        lines.append(
            {
                "instruction": question,
                "completions": [
                    {"response": _good(total), "overall_score": 9.0},
                    {"response": f"The sum is {total}.", "overall_score": 7.5},
                    {"response": _bad(total, rng), "overall_score": 2.0},
                ],
            }
        )
    planted = [
        (
            {
                "prompt": "What is 7 plus 7?",
                "completions": [
                    {"response": "14", "score": 5},
                    {"response": "Fourteen", "score": 5},
                ],
            },
            "no_pairs",
        ),
        (
            {"prompt": "What is 8 plus 8?", "completions": [{"response": "16", "score": 5}]},
            "no_pairs",
        ),
        (
            {
                "prompt": "What is 9 plus 9?",
                "completions": [
                    {"response": "18", "score": "high"},
                    {"response": "19", "score": 1},
                ],
            },
            "malformed",
        ),
        (
            {
                "prompt": "What is 4 plus 4? Explain.",
                "completions": [
                    {"response": "It is 8, since four and four make eight.", "score": 8},
                    {"response": ".", "score": 1},
                ],
            },
            "too_short",
        ),
    ]
    return lines, _plant(lines, planted, rng)


def _judged(rng: random.Random) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    answers: list[Any] = []
    for _ in range(8):
        question, total = _question(rng)
        for answer in (_good(total), _bad(total, rng)):
            answers.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    identity = RecordIdentity("pref-judged-answers", "judged_answers.jsonl")
    ids = [identity.next_id(_line(a).encode()) for a in answers]
    judgments: list[Any] = [
        {
            "chosen_record_id": ids[i],
            "rejected_record_id": ids[i + 1],
            "judge": "human",
            "margin": 1.0,
        }
        for i in range(0, len(ids), 2)
    ]
    planted = [
        (
            {"chosen_record_id": ids[0], "rejected_record_id": "0" * 32, "judge": "human"},
            "unknown_record",
        ),
        ({"chosen_record_id": ids[2], "judge": "human"}, "malformed"),
    ]
    return answers, judgments, _plant(judgments, planted, rng)


def _plant(
    lines: list[Any], planted: list[tuple[Any, str]], rng: random.Random
) -> list[dict[str, Any]]:
    for record, _ in planted:
        lines.insert(rng.randint(0, len(lines)), record)
    positions = {id(record): reason for record, reason in planted}
    out = []
    for line_number, record in enumerate(lines, start=1):
        reason = positions.pop(id(record), None)
        if reason is not None:
            out.append({"line": line_number, "reason": reason})
    return out


def _line(record: Any) -> str:
    return record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)


def write_preferences(root: Path, seed: int) -> dict[str, Any]:
    """Write every preference sample under ``root``; returns the planted manifest."""
    rng = random.Random(f"{seed}:preferences")
    trl, trl_planted = _trl(rng)
    transcripts, transcripts_planted = _transcripts(rng)
    rated, rated_planted = _rated(rng)
    answers, judgments, judgments_planted = _judged(rng)
    files = {
        "trl_pairs.jsonl": (trl, trl_planted),
        "transcript_pairs.jsonl": (transcripts, transcripts_planted),
        "rated_completions.jsonl": (rated, rated_planted),
        "judged_answers.jsonl": (answers, []),
        "judgments.jsonl": (judgments, judgments_planted),
    }
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {}
    for name, (records, planted) in files.items():
        text = "".join(_line(record) + "\n" for record in records)
        (folder / name).write_text(text, encoding="utf-8")
        manifest[name] = {"records": len(records), "planted": planted}
    (folder / "planted.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def sources_yaml_entries() -> list[str]:
    """The preference sources' lines of ``data/sources.yaml``."""
    lines = []
    for name, source, _ in SOURCES:
        lines += [
            f"  - path: {FOLDER}/{name}",
            f"    source: {source}",
            "    workspace: preferences",
            "    license: CC-BY-4.0",
        ]
    return lines
