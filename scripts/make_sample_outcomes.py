"""Write the sample outcomes the demo ingests late: ``data/outcomes/*.jsonl``.

    .venv/bin/python scripts/make_sample_outcomes.py [--check]

Outcomes are keyed by the ``record_id`` bronze gives the sample records (computed here
exactly as ingest does, from ``data/sources.yaml``), so they join without a lookup:

* ``first_batch.jsonl``: rewards for a third of the agent traces and test results for a
  third of the code tasks, as a grader would send them soon after the sessions;
* ``late_batch.jsonl``: what arrives later: rewards for more traces, a second (revised)
  reward for some already rewarded, and user feedback on a few support chats;
* ``bad_lines.jsonl``: three good lines and three bad ones (not JSON, unknown kind, no
  value), to show how ingest reports a bad line by file and line.

No ``arrived_at`` is written: it is stamped when the file is ingested. The output is
deterministic (fixed seed, sorted keys): running the script again gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posttrain.platform.ingest.bronze import record_ids  # noqa: E402
from posttrain.platform.ingest.readers import iter_raw_batches  # noqa: E402
from posttrain.platform.ingest.sources import load_sources  # noqa: E402

OUT = ROOT / "data" / "outcomes"
SEED = 20260101


def _ids(source: str) -> list[str]:
    (spec,) = [s for s in load_sources(ROOT / "data" / "sources.yaml") if s.source == source]
    path = spec.path
    return record_ids(source, path.name, iter_raw_batches(path))


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def build() -> dict[str, str]:
    """File name → content of every sample outcome file."""
    rng = random.Random(SEED)
    traces, tasks, support = _ids("agent-traces"), _ids("python-code-tasks"), _ids("dev-support")
    first: list[dict[str, Any]] = []
    for record_id in traces[::3]:
        first.append(
            {
                "record_id": record_id,
                "kind": "reward",
                "source": "grader-v1",
                "value": round(rng.uniform(-1, 1), 3),
            }
        )
    for record_id in tasks[::3]:
        passed = rng.random() < 0.7
        first.append(
            {
                "record_id": record_id,
                "kind": "test_result",
                "source": "ci",
                "value": 1.0 if passed else 0.0,
                "text": "all tests passed" if passed else "1 of 3 tests failed",
            }
        )
    late: list[dict[str, Any]] = []
    for record_id in traces[1::3]:
        late.append(
            {
                "record_id": record_id,
                "kind": "reward",
                "source": "grader-v1",
                "value": round(rng.uniform(-1, 1), 3),
            }
        )
    for record_id in traces[::9]:  # a regrade: the latest reward wins in silver.labeled
        late.append(
            {
                "record_id": record_id,
                "kind": "reward",
                "source": "grader-v2",
                "value": round(rng.uniform(-1, 1), 3),
            }
        )
    for record_id in support[::10]:
        late.append(
            {
                "record_id": record_id,
                "kind": "feedback",
                "source": "user",
                "text": rng.choice(["solved my problem", "did not help", "partly right"]),
            }
        )
    bad = [
        _line(first[0]),
        "{not json",
        _line({"record_id": traces[2], "kind": "vibes", "value": 1}),
        _line(late[0]),
        _line({"record_id": traces[5], "kind": "reward"}),
        _line(late[1]),
    ]
    return {
        "first_batch.jsonl": "".join(_line(row) + "\n" for row in first),
        "late_batch.jsonl": "".join(_line(row) + "\n" for row in late),
        "bad_lines.jsonl": "".join(line + "\n" for line in bad),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args()
    files = build()
    if args.check:
        stale = [
            n
            for n, text in files.items()
            if not (OUT / n).is_file() or (OUT / n).read_text(encoding="utf-8") != text
        ]
        print("stale: " + ", ".join(stale) if stale else "data/outcomes is current")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
