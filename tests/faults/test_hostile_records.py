"""Hostile records through the real pipeline: ingest → silver → gold never fails.

A corpus of records built to break things (JSON nested 100,000 deep, NUL bytes, lone
surrogates, a 50 MB line, 10,000 turns, huge tool-call arguments, a file mixing chat
formats, lines that are not UTF-8) sits among good records. Ingest takes the files as a
user's would be, then silver and gold are built, in process and on Ray. The run succeeds,
every good record reaches gold, every hostile one is a rejection naming its file and line,
and bronze = silver + rejections.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from posttrain.platform import checks
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor
from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed, build_gold_sft
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.schemas import TableName
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse

WORDS = [
    "river", "lantern", "copper", "meadow", "signal", "harbor", "quartz", "violet", "ember",
    "falcon", "glacier", "orbit", "pepper", "saddle", "timber", "velvet", "walnut", "yonder",
    "anchor", "bramble", "cinder", "dune", "echo", "fable", "garnet", "hollow", "ivory",
    "jasper", "kettle", "lumen", "marble", "nectar", "oasis", "prism", "quiver", "ripple",
    "sable", "thistle", "umber", "vapor", "willow", "zephyr", "basalt", "cobalt", "delta",
]  # fmt: skip
HEAD_RECORDS = 120  # good lines first: format sniffing reads only the head of a file


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _chat(rng: random.Random) -> dict[str, object]:
    return {
        "messages": [
            {"role": "user", "content": f"Explain {_sentence(rng, 12)}?"},
            {"role": "assistant", "content": f"In short, {_sentence(rng, 30)}."},
        ]
    }


@dataclass(frozen=True)
class Hostile:
    """A hostile line of a corpus file and the rejection reason it must get."""

    name: str
    line: str
    reason: str


def _hostile(rng: random.Random, big_line_mb: int) -> list[Hostile]:
    deep = '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    chat = json.dumps(_chat(rng))
    many_turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": _sentence(rng, 3)}
        for i in range(10_000)
    ]
    call = {"name": "search", "arguments": json.dumps({"q": _sentence(rng, 5) * 40_000})}
    tool_turns = [
        {"role": "user", "content": "Search for it."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
        },
        {"role": "tool", "content": "found", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Done."},
    ]
    big = {
        "messages": [
            {"role": "user", "content": "Summarize this."},
            {"role": "assistant", "content": "x" * (big_line_mb * 1024 * 1024)},
        ]
    }
    return [
        Hostile("nested 100,000 deep", deep, "malformed"),
        Hostile("raw NUL byte", chat.replace("Explain", "Expl\x00ain"), "malformed"),
        Hostile("lone surrogate", chat.replace("Explain", "Expl\\ud800ain"), "malformed"),
        Hostile("reversed surrogates", chat.replace("Explain", "\\udc00\\ud800"), "malformed"),
        Hostile("10,000 turns", json.dumps({"messages": many_turns}), "too_long"),
        Hostile("huge tool-call arguments", json.dumps({"messages": tool_turns}), "too_long"),
        Hostile(f"{big_line_mb} MB line", json.dumps(big), "too_long"),
        Hostile("not JSON at all", "\x00\x01\x02 binary junk", "malformed"),
    ]


@dataclass(frozen=True)
class Corpus:
    folder: Path
    good: int  # good records in the files
    hostile: dict[tuple[str, int], Hostile]  # (file name, line) → what it is


def _write_corpus(folder: Path, big_line_mb: int) -> Corpus:
    folder.mkdir()
    rng = random.Random(7)
    hostile: dict[tuple[str, int], Hostile] = {}
    lines = [json.dumps(_chat(rng)) for _ in range(HEAD_RECORDS)]
    for record in _hostile(rng, big_line_mb):
        lines.append(record.line)
        hostile[("hostile.jsonl", len(lines))] = record
        lines.append(json.dumps(_chat(rng)))
    good = HEAD_RECORDS + len(hostile)
    first = folder / "hostile.jsonl"
    first.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # One file mixing chat formats: OpenAI records are the majority, so the others are not
    # what the file says they are.
    mixed = [json.dumps(_chat(rng)) for _ in range(HEAD_RECORDS)]
    others = [
        {"conversations": [{"from": "human", "value": _sentence(rng, 9)}]},
        {"instruction": _sentence(rng, 9), "output": _sentence(rng, 9)},
        {"prompt": _sentence(rng, 9), "completion": "ok then"},
    ]
    for offset, record in enumerate(others):
        mixed.insert(40 + offset, json.dumps(record))
        hostile[("mixed.jsonl", 41 + offset)] = Hostile(
            "other chat format", mixed[40 + offset], "malformed"
        )
    second = folder / "mixed.jsonl"
    second.write_text("\n".join(mixed) + "\n", encoding="utf-8")
    return Corpus(folder, good + HEAD_RECORDS, hostile)


INVALID_UTF8 = b'{"messages": [{"role": "user", "content": "caf\xe9 au lait"}]}'
UNDECODABLE_LINES = {3: INVALID_UTF8, 9: b"\xff\xfe{}"}


def _write_undecodable_file(corpus: Corpus) -> Corpus:
    """A file whose lines 3 and 9 are not UTF-8, among good lines, as a Latin-1 export is."""
    rng = random.Random(11)
    lines = [
        UNDECODABLE_LINES.get(number, json.dumps(_chat(rng)).encode()) for number in range(1, 13)
    ]
    (corpus.folder / "latin1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    hostile = {
        ("latin1.jsonl", number): Hostile("not UTF-8", repr(line), "malformed")
        for number, line in UNDECODABLE_LINES.items()
    }
    good = len(lines) - len(UNDECODABLE_LINES)
    return Corpus(corpus.folder, corpus.good + good, corpus.hostile | hostile)


def _run(warehouse: Warehouse, corpus: Corpus, executor: Executor) -> None:
    seed_humaneval(warehouse)
    corpus = _write_undecodable_file(corpus)
    ingest(warehouse, [SourceSpec(path=corpus.folder, source="users")])

    silver = build_silver(warehouse, SilverConfig(), executor)
    build_gold_sft(warehouse)
    packed = build_gold_packed(warehouse, GoldSftConfig(), executor)

    bronze = warehouse.read(
        TableName.BRONZE_RECORDS, columns=("record_id", "source_uri", "row_index")
    )
    kept = warehouse.read(TableName.SILVER_CONVERSATIONS, columns=("record_id",))
    rejections = warehouse.read(TableName.SILVER_REJECTIONS)
    assert checks.rows_conserved(warehouse).passed
    assert bronze.num_rows == kept.num_rows + rejections.num_rows

    # Every hostile record is a rejection naming its file and line, with the right reason.
    by_place = {
        (row["source_uri"].rsplit("/", 1)[-1], row["row_index"]): row
        for row in rejections.to_pylist()
    }
    assert by_place.keys() == corpus.hostile.keys()
    for place, record in corpus.hostile.items():
        assert by_place[place]["reason"] == record.reason, (record.name, by_place[place])
    offset = INVALID_UTF8.index(b"\xe9")
    assert by_place[("latin1.jsonl", 3)]["detail"] == f"not valid UTF-8 at byte offset {offset}"
    assert by_place[("latin1.jsonl", 9)]["detail"] == "not valid UTF-8 at byte offset 0"
    assert "100,001 levels deep" in by_place[("hostile.jsonl", HEAD_RECORDS + 1)]["detail"]
    # Bronze keeps the undecodable bytes exactly as received, not repaired.
    kept_bytes = warehouse.read(
        TableName.BRONZE_RECORDS,
        columns=("payload", "payload_bytes"),
        row_filter="payload_bytes is not null",
    )
    assert sorted(kept_bytes["payload_bytes"].to_pylist()) == sorted(UNDECODABLE_LINES.values())
    assert kept_bytes["payload"].null_count == kept_bytes.num_rows

    # Every good record reaches gold, tokenized and packed once.
    assert kept.num_rows == corpus.good == silver.kept
    gold = warehouse.read(TableName.GOLD_SFT, columns=("record_id",))
    assert sorted(gold["record_id"].to_pylist()) == sorted(kept["record_id"].to_pylist())
    assert packed.dropped_record_ids == [] and packed.refused == {}
    assert checks.packs_cover_records(warehouse, packed.dropped_record_ids).passed


def test_hostile_records_never_fail_the_run_in_process(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    _run(warehouse, _write_corpus(tmp_path / "inbox", big_line_mb=2), InProcessExecutor())


@pytest.mark.slow
def test_a_50_mb_line_is_rejected_and_the_run_succeeds(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    _run(warehouse, _write_corpus(tmp_path / "inbox", big_line_mb=50), InProcessExecutor())


@pytest.mark.slow
def test_hostile_records_never_fail_the_run_on_ray(
    warehouse: Warehouse, tmp_path: Path, ray_runtime: None
) -> None:
    _run(warehouse, _write_corpus(tmp_path / "inbox", big_line_mb=2), RayExecutor())
