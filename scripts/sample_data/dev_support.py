"""Developer-support chats about real Python errors (an OpenAI-format JSONL source).

Each catalog entry writes a small buggy snippet; the snippet is executed here and the
exception line Python prints is pasted into the user's message, so every error message in
the data is the real one. The assistant explains the cause and shows a fix. Many chats
chain two problems (the user fixes one and hits the next), as support threads do.
"""

from __future__ import annotations

import random

from sample_data.model import Conversation, msg
from sample_data.python_errors import CATALOG, Bug, error_line

SYSTEM_PROMPTS = [
    "You are a senior Python developer helping colleagues debug. Explain the cause first, "
    "then show the fix.",
    "You are a support assistant for a developer platform. Be precise and include corrected code.",
    "Help users fix Python errors. Quote the relevant line, explain why it fails, and give a "
    "minimal fix.",
]
CONTEXTS = [
    "in my Flask app",
    "in a data-cleaning script",
    "in a CLI tool I'm writing",
    "in a Jupyter notebook",
    "in our ETL job",
    "in a Django view",
    "while parsing a CSV export",
    "in a small automation script",
    "in a unit test",
    "in a FastAPI endpoint",
    "in a homework assignment",
    "in a cron job",
]
OPENERS = [
    "I'm getting this error {ctx}:",
    "Why does this fail {ctx}?",
    "Can someone explain this traceback {ctx}?",
    "Help! This crashes {ctx}:",
    "This used to work, now it raises an error {ctx}:",
    "Stuck on this {ctx}:",
]
NEXT = [
    "Thanks, that fixed it! Now I get a different error:",
    "That worked. Next problem:",
    "OK, fixed. But now this:",
    "Great, moving on. This one is also confusing me:",
]
THANKS = [
    ("Perfect, thank you!", "You're welcome! Happy debugging."),
    (
        "That makes sense now.",
        "Glad it helped. Reading the last line of the traceback first usually points "
        "straight at the cause.",
    ),
    ("Works now, thanks.", "Great! Consider adding a test for that case so it doesn't come back."),
]


def _problem(rng: random.Random, bug: Bug) -> tuple[str, str]:
    shown = f"```python\n{bug.code}\n```\n\n```\n{error_line(bug.code)}\n```"
    answer = rng.choice(
        [
            f"{bug.explanation}\n\nFix:\n\n```python\n{bug.fix}\n```",
            f"The problem: {bug.explanation[0].lower()}{bug.explanation[1:]}\n\nHere is a "
            f"corrected version:\n\n```python\n{bug.fix}\n```",
            f"```\n{error_line(bug.code)}\n```\n\n{bug.explanation} You can fix it like "
            f"this:\n\n```python\n{bug.fix}\n```",
        ]
    )
    return shown, answer


def support_conversation(rng: random.Random) -> Conversation:
    """One support chat: one or two errors, maybe a closing thank-you."""
    turns: Conversation = [msg("system", rng.choice(SYSTEM_PROMPTS))] if rng.random() < 0.5 else []
    first, second = rng.sample(CATALOG, 2)
    shown, answer = _problem(rng, first(rng))
    turns += [
        msg("user", f"{rng.choice(OPENERS).format(ctx=rng.choice(CONTEXTS))}\n\n{shown}"),
        msg("assistant", answer),
    ]
    if rng.random() < 0.6:
        shown, answer = _problem(rng, second(rng))
        turns += [msg("user", f"{rng.choice(NEXT)}\n\n{shown}"), msg("assistant", answer)]
    if rng.random() < 0.3:
        thanks, reply = rng.choice(THANKS)
        turns += [msg("user", thanks), msg("assistant", reply)]
    return turns
