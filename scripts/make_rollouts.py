"""Generate ``data/samples/rl_rollouts.jsonl``: RL rollouts of the sample math problems.

    .venv/bin/python scripts/make_rollouts.py          # rewrite the file
    .venv/bin/python scripts/make_rollouts.py --check  # exit 1 if it is stale

Deterministic (a seeded generator, no clock). The prompts are the math-tutor problems that
``gold.rl_prompts`` seeds from the samples: the prompt id is ``math-tutor:<bronze record
id>``, computed the way ingest computes it, and the answer is the one the problem's
``numeric`` verifier checks. Each problem gets rollouts from two policy checkpoints, some
right and some wrong, some with a reward and some without (scored by the verifier when the
rollout is built), with their sampling settings. A few lines are broken on purpose: a
missing checkpoint, a reward that is not a number, an unknown prompt id and a truncated
line; each becomes a rejection with its reason.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from posttrain.platform.ingest.bronze import record_ids
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import iter_raw_batches
from posttrain.platform.rl.build import RlPromptsConfig, Task, math_task
from posttrain.platform.silver.parse import parse_payload

REPO = Path(__file__).resolve().parents[1]
MATH = REPO / "data" / "samples" / "math_tutor.jsonl"
OUT = REPO / "data" / "samples" / "rl_rollouts.jsonl"
PLANTED = REPO / "data" / "samples" / "planted.json"
SOURCE = "math-tutor"
SEED = 20261129
PROBLEMS = 40
CHECKPOINTS = ("policy-step-100", "policy-step-200")
OPENINGS = (
    "Let me set this up carefully.",
    "Working through the numbers one at a time.",
    "First I write down what is given.",
    "I will compute this step by step.",
)


def _tasks() -> list[Task]:
    """Math problems with one-number answers, skipping records planted as defects."""
    planted = {item["record_id"] for item in json.loads(PLANTED.read_text())["items"]}
    batches = list(iter_raw_batches(MATH))
    ids = record_ids(SOURCE, MATH.name, batches)
    payloads = [p for batch in batches for p in batch["payload"].to_pylist()]
    tasks = []
    for record_id, payload in zip(ids, payloads, strict=True):
        if record_id in planted or payload is None:
            continue
        messages = parse_payload(payload, ChatFormat.SHAREGPT)
        task = math_task(
            {"record_id": record_id, "messages": messages, "source": SOURCE},
            RlPromptsConfig(),
        )
        if isinstance(task, Task) and task.verifier_kind == "numeric":
            tasks.append(task)
    return tasks[:PROBLEMS]


def _number(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".").replace(",", "")


def _completion(rng: random.Random, answer: float, question: str) -> str:
    words = question.split()
    focus = " ".join(words[: min(8, len(words))])
    return (
        f"{rng.choice(OPENINGS)} The question asks: {focus} … "
        f"Putting the quantities together gives {_number(answer)}.\n\n**Answer:** {_number(answer)}"
    )


def rollouts() -> list[str]:
    """The lines of the rollouts file."""
    rng = random.Random(SEED)
    lines: list[dict[str, Any] | str] = []
    for index, task in enumerate(_tasks()):
        answer = json.loads(task.verifier_spec)["answer"]
        question = task.prompt[-1]["content"]
        for attempt, checkpoint in enumerate(CHECKPOINTS * 2):
            right = rng.random() < (0.45 if checkpoint == CHECKPOINTS[0] else 0.75)
            value = answer if right else answer + rng.choice((-10, -3, -1, 1, 2, 7))
            record: dict[str, Any] = {
                "prompt_id": task.prompt_id,
                "completion": _completion(rng, value, question),
                "checkpoint": checkpoint,
                "sampling": {
                    "temperature": 0.8,
                    "top_p": 0.95,
                    "max_tokens": 512,
                    "seed": index * 10 + attempt,
                },
            }
            if attempt % 2 == 0:  # half carry the trainer's reward, half are scored here
                record["reward"] = 1.0 if right else 0.0
            lines.append(record)
    first = lines[0]
    assert isinstance(first, dict)
    lines += [
        {k: v for k, v in first.items() if k != "checkpoint"},
        {**first, "reward": "high"},
        {**first, "prompt_id": "math-tutor:not-a-known-record"},
        json.dumps(first)[:60],
    ]
    return [
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = "\n".join(rollouts()) + "\n"
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        print("up to date" if current == text else f"{OUT} is stale")
        return 0 if current == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
