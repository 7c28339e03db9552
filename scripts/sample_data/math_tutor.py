"""Math tutoring conversations (the ShareGPT source), assembled from computed problems.

A conversation is an optional system prompt, a problem from :mod:`.math_problems` or
:mod:`.math_arithmetic` with its worked answer, and sometimes a follow-up that changes one
quantity or a second problem, which makes it multi-turn.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sample_data import math_arithmetic as arithmetic
from sample_data import math_problems as problems
from sample_data.math_problems import Problem
from sample_data.model import Conversation, msg

SYSTEM_PROMPTS = [
    "You are a patient math tutor. Explain each step and put the final answer on its own line.",
    "You are a helpful assistant for middle-school math homework. Be clear and concise.",
    "You help students check their arithmetic. Show the calculation, then the answer.",
    "Answer math word problems step by step and always include units in the final answer.",
    "You are a friendly tutor. Work through problems carefully and avoid skipping steps.",
]
OPENERS = [
    "",
    "",
    "",
    "Can you help me with this? ",
    "Homework question: ",
    "Quick one: ",
    "I'm stuck on this problem. ",
    "How do I solve this? ",
]
LEADS = ["", "", "Let's work through it step by step.\n\n", "Sure!\n\n", "Here's the working:\n\n"]


TEMPLATES: list[Callable[[random.Random], Problem]] = [
    problems.shopping,
    problems.speed,
    problems.discount,
    problems.population,
    problems.average,
    problems.garden,
    problems.compound_interest,
    arithmetic.conversion,
    problems.pipes,
    problems.ratio_split,
    problems.recipe,
    problems.ages,
    arithmetic.long_multiplication,
    arithmetic.order_of_operations,
    arithmetic.fractions_sum,
    arithmetic.linear_equation,
    arithmetic.clock,
    problems.unit_price,
    arithmetic.median_range,
    arithmetic.marbles,
]


def math_conversation(rng: random.Random) -> Conversation:
    """A tutoring chat: maybe a system prompt, a problem, maybe a follow-up or a second one."""
    turns: Conversation = []
    if rng.random() < 0.3:
        turns.append(msg("system", rng.choice(SYSTEM_PROMPTS)))
    problem = rng.choice(TEMPLATES)(rng)
    turns += [
        msg("user", rng.choice(OPENERS) + problem.question),
        msg("assistant", rng.choice(LEADS) + problem.solution),
    ]
    roll = rng.random()
    if problem.followup is not None and roll < 0.35:
        turns += [msg("user", problem.followup[0]), msg("assistant", problem.followup[1])]
    elif roll > 0.88:
        second = rng.choice(TEMPLATES)(rng)
        turns += [
            msg(
                "user",
                rng.choice(["Thanks! Another one: ", "Great. Next: ", "Got it. Now this one: "])
                + second.question,
            ),
            msg("assistant", second.solution),
        ]
    return turns
