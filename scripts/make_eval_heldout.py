"""Generate the held-out math suite ``posttrain/platform/evals/data/math_heldout.jsonl``.

    .venv/bin/python scripts/make_eval_heldout.py          # rewrite the file
    .venv/bin/python scripts/make_eval_heldout.py --check  # exit 1 if it is stale

The items come from the same problem templates as the ``math-tutor`` sample source
(``scripts/sample_data/math_tutor.py``) drawn with a seed of their own, so they are a
held-out split of that distribution. Silver decontaminates training data against the suite
(``eval.math_heldout``), so a leaked item is rejected, never trained on; hence an item is
kept only if no record of the sample data (``data/``) shares a word 13-gram with it under
the default decontamination settings. Templates whose wording leaves few numbers in a
13-gram ("It is 25% off, and 6% sales tax is added to the discounted price") collide with
the training problems and are thereby under-represented. Deterministic: seeded, no clock,
no network.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sample_data.math_tutor import TEMPLATES

from posttrain.platform.decontam import DecontamConfig
from posttrain.platform.decontam.references import build_index, reference_set
from posttrain.platform.rl.answers import final_answer

SEED = "20240611:math-heldout"
ITEMS = 60
CANDIDATES = 400
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "posttrain/platform/evals/data/math_heldout.jsonl"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def training_texts() -> list[str]:
    """The text of every record of the sample data: every string of each JSON record."""
    texts = []
    for path in sorted((REPO_ROOT / "data").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                texts.append("\n".join(_strings(json.loads(line))))
            except json.JSONDecodeError:
                texts.append(line)
    for path in sorted((REPO_ROOT / "data").rglob("*.parquet")):
        texts += ["\n".join(_strings(row)) for row in pq.read_table(path).to_pylist()]
    return texts


def candidates() -> list[dict[str, str]]:
    """Problems from every template in turn, distinct questions, in generation order."""
    rng = random.Random(SEED)
    made: dict[str, dict[str, str]] = {}
    while len(made) < CANDIDATES:
        problem = TEMPLATES[len(made) % len(TEMPLATES)](rng)
        made.setdefault(
            problem.question,
            {
                "question": problem.question,
                "solution": problem.solution,
                "answer": final_answer(problem.solution),
            },
        )
    return list(made.values())


def held_out(items: list[dict[str, str]], texts: list[str]) -> list[dict[str, str]]:
    """The items that share no decontamination n-gram with any training text.

    The training texts are indexed and the items matched against them: whether an n-gram
    is indexed depends only on its own tokens, so this is the relation silver checks, in
    one pass.
    """
    training = pa.table(
        {"item_id": [str(k) for k in range(len(texts))], "text": texts},
    )
    index = build_index([reference_set("training", training, ["text"])], DecontamConfig())
    matches = index.match([f"{i['question']}\n{i['solution']}" for i in items])
    return [item for item, hits in zip(items, matches.matched, strict=True) if hits == 0]


def build() -> str:
    """The JSONL text of the suite."""
    kept = held_out(candidates(), training_texts())[:ITEMS]
    if len(kept) < ITEMS:
        raise SystemExit(f"only {len(kept)} clean candidates; raise CANDIDATES")
    lines = [
        json.dumps({"item_id": f"math-heldout-{k:04d}", **item}, ensure_ascii=False, sort_keys=True)
        for k, item in enumerate(kept, start=1)
    ]
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
