"""Plant what silver must find: duplicates, near duplicates, contamination, PII, bad rows.

Every planted row carries a ``plant`` dict (its manifest entry without the location) and,
for copies, a link to the row it copies. New rows are inserted at seeded positions; a
copy in the same file always comes after its original.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from typing import Any

from sample_data import edits, pii
from sample_data.build import Source
from sample_data.model import Conversation, Row, jaccard, msg, normalized

NEAR_DUP_RANGE = (0.8, 0.97)


def insert_row(source: Source, row: Row, rng: random.Random, after: Row | None = None) -> None:
    """Insert ``row`` at a seeded position (after ``after`` when it is in the same file)."""
    start = source.rows.index(after) + 1 if after is not None and after in source.rows else 0
    source.rows.insert(rng.randint(start, len(source.rows)), row)


def unplanted(
    source: Source, rng: random.Random, predicate: Callable[[Row], bool] = lambda r: True
) -> Row:
    """A seeded choice among base rows that carry no plant and are nobody's original yet.

    Each original is copied once, so the planted pairs are all the duplicate pairs there
    are (two copies of one original would make a third, unlisted pair).
    """
    candidates = [
        r
        for r in source.rows
        if r.plant is None and not r.copied and r.conversation and predicate(r)
    ]
    return rng.choice(candidates)


def copy_of(original: Row, row: Row, plant: dict[str, Any]) -> Row:
    """Mark ``row`` as a planted copy of ``original``."""
    original.copied = True
    row.original, row.plant = original, plant
    return row


def fits(conversation: Conversation, target: Source) -> bool:
    """Whether ``target``'s format can hold ``conversation`` without changing its messages."""
    roles = [m["role"] for m in conversation]
    if target.format in ("alpaca", "prompt_completion"):
        return roles == ["user", "assistant"]
    if target.format == "sharegpt":
        return set(roles) <= {"system", "user", "assistant"}
    return True


# -- personal data and secrets ------------------------------------------------------------

SECRET_SNIPPETS = {
    "openai_key": "My .env, in case it matters:\n\n```\nOPENAI_API_KEY={value}\n"
    "LOG_LEVEL=debug\n```",
    "github_token": "I push with `git push https://{value}@github.com/acme-data/etl-jobs.git "
    "main`, could that be related?",
    "aws_access_key": "The client is created like this:\n\n```python\ns3 = "
    "boto3.client('s3', aws_access_key_id='{value}', "
    "aws_secret_access_key='{extra}')\n```",
    "hf_token": "Before that I ran `huggingface-cli login --token {value}`.",
}
SECRET_WARNING = (
    "Before anything else: you pasted what looks like a live credential. Revoke it now and "
    "create a new "
    "one, and keep secrets out of chats and git history (use environment variables or a "
    "secrets manager).\n\n"
)


def _first_user(conversation: Conversation) -> Conversation:
    return [m for m in conversation if m["role"] == "user"][:1]


def plant_personal_data(source: Source, rng: random.Random, count: int) -> None:
    """Add e-mail addresses and phone numbers to the first user turn of ``count`` rows."""
    for _ in range(count):
        row = unplanted(source, rng, lambda r: bool(_first_user(r.conversation or [])))
        email, phone = pii.email(rng), pii.phone(rng)
        kinds = rng.choice([["email"], ["phone"], ["email", "phone"]])
        sentence = {
            ("email",): f"If you need more details, email me at {email}.",
            ("phone",): f"It's urgent, you can call me on {phone}.",
            ("email", "phone"): f"Contact: {email} / {phone}",
        }[tuple(kinds)]
        turn = _first_user(row.conversation or [])[0]
        turn["content"] = f"{turn['content']}\n\n{sentence}"
        values = [{"email": email, "phone": phone}[k] for k in kinds]
        row.plant = {"kind": "pii", "types": kinds, "values": values}


def plant_secrets(source: Source, rng: random.Random, count: int) -> None:
    """Paste a credential into a user turn; the assistant's reply starts with a warning."""
    kinds = sorted(SECRET_SNIPPETS)
    for index in range(count):
        row = unplanted(source, rng, lambda r: bool(_first_user(r.conversation or [])))
        kind = kinds[index % len(kinds)]
        value = pii.SECRET_MAKERS[kind](rng)
        extra = pii.aws_secret_key(rng) if kind == "aws_access_key" else ""
        conversation = row.conversation or []
        turn = _first_user(conversation)[0]
        turn["content"] += "\n\n" + SECRET_SNIPPETS[kind].format(value=value, extra=extra)
        reply = conversation[conversation.index(turn) + 1]
        reply["content"] = SECRET_WARNING + (reply["content"] or "")
        row.plant = {
            "kind": "secret",
            "types": [kind],
            "values": [value] + ([extra] if extra else []),
        }


# -- exact duplicates ------------------------------------------------------------------------


def _whitespace_variant(conversation: Conversation, rng: random.Random) -> Conversation:
    changed = copy.deepcopy(conversation)
    turn = rng.choice([m for m in changed if m.get("content")])
    words = turn["content"].split(" ")
    at = rng.randrange(1, len(words)) if len(words) > 1 else 0
    turn["content"] = "  " + " ".join(words[:at]) + "   " + " ".join(words[at:]) + " \n"
    return changed


def _case_variant(conversation: Conversation) -> Conversation:
    changed = copy.deepcopy(conversation)
    for turn in changed:
        if turn["role"] == "user" and turn.get("content"):
            turn["content"] = (
                turn["content"].lower()
                if turn["content"] != turn["content"].lower()
                else turn["content"].upper()
            )
    return changed


def plant_exact_duplicates(
    source: Source, rng: random.Random, identical: int, variants: int
) -> None:
    """Copies within ``source``: identical rows, whitespace/case variants, re-serialized JSON."""
    for _ in range(identical):
        original = unplanted(source, rng)
        row = copy_of(
            original,
            Row(original.conversation, original.encode),
            {"kind": "exact_dup", "variant": "identical"},
        )
        insert_row(source, row, rng, after=original)
    for index in range(variants):
        original = unplanted(source, rng)
        variant = ["whitespace", "case", "reserialized"][index % (2 if source.is_parquet else 3)]
        if variant == "reserialized":
            line = json.dumps(
                original.value(), ensure_ascii=True, sort_keys=True, separators=(",", ":")
            )
            row = Row(original.conversation, raw=line)
        else:
            changed = (
                _whitespace_variant(original.conversation or [], rng)
                if variant == "whitespace"
                else _case_variant(original.conversation or [])
            )
            assert normalized(changed) == normalized(original.conversation or [])
            row = Row(changed, source.make_encoder())
        copy_of(original, row, {"kind": "exact_dup", "variant": variant})
        insert_row(source, row, rng, after=original)


def plant_cross_source_duplicates(
    origin: Source, target: Source, rng: random.Random, count: int
) -> None:
    """The same conversation published again by ``target``, in ``target``'s format."""
    for _ in range(count):
        original = unplanted(origin, rng, lambda r: fits(r.conversation or [], target))
        row = copy_of(
            original,
            Row(copy.deepcopy(original.conversation), target.make_encoder()),
            {"kind": "exact_dup", "variant": "cross_source"},
        )
        insert_row(target, row, rng)


# -- near duplicates ---------------------------------------------------------------------------


def plant_near_duplicates(origin: Source, target: Source, rng: random.Random, count: int) -> None:
    """Edited copies (typos, reordered sentences, boilerplate, truncation) with Jaccard 0.8–0.97."""
    kinds = sorted(edits.EDITS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        for _attempt in range(200):
            original = unplanted(
                origin,
                rng,
                lambda r: (
                    fits(r.conversation or [], target)
                    and len(normalized(r.conversation or []).split()) >= 60
                ),
            )
            edited = edits.EDITS[kind](original.conversation or [], rng)
            if edited is None or normalized(edited) == normalized(original.conversation or []):
                continue
            similarity = jaccard(original.conversation or [], edited)
            if NEAR_DUP_RANGE[0] <= similarity <= NEAR_DUP_RANGE[1]:
                break
        else:
            raise RuntimeError(f"no near duplicate of kind {kind} found in {origin.name}")
        row = copy_of(
            original,
            Row(edited, target.make_encoder()),
            {"kind": "near_dup", "edit": kind, "jaccard": round(similarity, 3)},
        )
        insert_row(target, row, rng, after=original)


# -- benchmark contamination -----------------------------------------------------------------

CONTAMINATION_EDITS = ["wrapped", "examples_removed", "reindented", "renamed"]


def _edit_problem(problem: dict[str, str], edit: str) -> tuple[str, str]:
    """``(prompt, full solution)`` for a HumanEval problem after a light edit."""
    prompt, solution = problem["prompt"].lstrip("\n"), problem["canonical_solution"]
    if edit == "examples_removed":
        lines, kept, skipping = prompt.split("\n"), [], False
        for line in lines:
            stripped = line.strip()
            if stripped.startswith(">>>"):
                skipping = True
                continue
            if (
                skipping
                and stripped
                and not stripped.startswith('"""')
                and not stripped.startswith("'''")
            ):
                continue
            skipping = False
            kept.append(line)
        prompt = "\n".join(kept)
    elif edit == "reindented":

        def two_spaces(text: str) -> str:
            return re.sub(
                r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), text, flags=re.MULTILINE
            )

        prompt, solution = two_spaces(prompt).replace('"""', "'''"), two_spaces(solution)
    elif edit == "renamed":
        entry = problem["entry_point"]
        new = f"{entry}_impl" if len(entry) > 3 else f"my_{entry}"
        prompt, solution = prompt.replace(entry, new), solution.replace(entry, new)
    return prompt, prompt + solution


def contaminated_conversation(
    problem: dict[str, str], edit: str, rng: random.Random
) -> Conversation:
    prompt, solution = _edit_problem(problem, edit)
    ask = rng.choice(
        [
            "Complete the following Python function:",
            "Implement this function so that it satisfies its docstring.",
            "Finish this function:",
        ]
    )
    user = (
        f"{ask}\n\n```python\n{prompt.strip()}\n```" if edit != "wrapped" else f"{ask}\n\n{prompt}"
    )
    return [msg("user", user), msg("assistant", f"```python\n{solution.rstrip()}\n```")]


def plant_contamination(source: Source, problems: list[dict[str, str]], rng: random.Random) -> None:
    for index, problem in enumerate(problems):
        edit = CONTAMINATION_EDITS[index % len(CONTAMINATION_EDITS)]
        row = Row(
            contaminated_conversation(problem, edit, rng),
            source.make_encoder(),
            plant={
                "kind": "contaminated",
                "benchmark": "humaneval",
                "item_id": problem["task_id"],
                "edit": edit,
            },
        )
        insert_row(source, row, rng)
