"""Generate the held-out math suite ``posttrain/platform/evals/data/math_heldout.jsonl``.

    .venv/bin/python scripts/make_eval_heldout.py          # rewrite the file
    .venv/bin/python scripts/make_eval_heldout.py --check  # exit 1 if it is stale

The items come from the same problem templates as the ``math-tutor`` sample source
(``scripts/sample_data/math_tutor.py``) drawn with a seed of their own, so they are a
held-out split of that distribution: no question of the suite is a question of
``data/samples/math_tutor.jsonl``. Silver decontaminates training data against the suite
(``eval.math_heldout``), so a leaked item is rejected, never trained on. Deterministic:
seeded, no clock, no network.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from sample_data.math_tutor import TEMPLATES

from posttrain.platform.rl.answers import final_answer

SEED = "20240611:math-heldout"
ITEMS = 60
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "posttrain/platform/evals/data/math_heldout.jsonl"
TRAINING = REPO_ROOT / "data/samples/math_tutor.jsonl"


def training_questions() -> set[str]:
    """Every user turn of the math-tutor sample source."""
    questions = set()
    for line in TRAINING.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the planted malformed lines
        for turn in record.get("conversations", []) if isinstance(record, dict) else []:
            if isinstance(turn, dict) and turn.get("from") == "human":
                questions.add(str(turn.get("value", "")))
    return questions


def build() -> str:
    """The JSONL text of the suite."""
    rng = random.Random(SEED)
    seen = {q.strip() for q in training_questions()}
    lines = []
    while len(lines) < ITEMS:
        problem = TEMPLATES[len(lines) % len(TEMPLATES)](rng)
        if problem.question in seen or any(problem.question in q for q in seen):
            continue
        seen.add(problem.question)
        item = {
            "item_id": f"math-heldout-{len(lines) + 1:04d}",
            "question": problem.question,
            "solution": problem.solution,
            "answer": final_answer(problem.solution),
        }
        lines.append(json.dumps(item, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = build()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"stale: {OUTPUT.relative_to(REPO_ROOT)}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {ITEMS} items to {OUTPUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
