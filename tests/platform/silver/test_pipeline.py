"""build_silver: every bronze record accounted for, incremental runs, dedup across time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrain.platform import checks
from posttrain.platform.dedup import DedupConfig
from posttrain.platform.errors import CommitConflictError
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import CONFIG_HASH_KEY, inputs_from_summary
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse


def _chat(question: str, answer: str) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    )


ORIGINALS = [
    _chat(
        f"How do I reverse a list of {n} items in Python without copying it?",
        f"Call items.reverse() on the list of {n}; it reverses in place and returns None, "
        "so do not assign its result. Use reversed(items) to iterate backwards lazily.",
    )
    for n in ("three", "seven", "twelve", "forty")
]


def _ingest(warehouse: Warehouse, tmp_path: Path, name: str, lines: list[str]) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ingest(warehouse, [SourceSpec(path=path, source=name)])


@pytest.fixture
def seeded(warehouse: Warehouse) -> Warehouse:
    seed_humaneval(warehouse)
    return warehouse


def test_first_build_accounts_for_every_record(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "first", [*ORIGINALS, ORIGINALS[0], "{not json"])
    report = build_silver(seeded, SilverConfig(), InProcessExecutor())
    assert report.mode == "full"
    assert report.kept == 4
    assert report.rejected_by_reason == {"exact_dup": 1, "malformed": 1}
    assert checks.rows_conserved(seeded).passed


def test_every_rejection_names_the_file_and_line_of_its_record(
    seeded: Warehouse, tmp_path: Path
) -> None:
    _ingest(seeded, tmp_path, "first", [*ORIGINALS, ORIGINALS[0], "{not json"])
    build_silver(seeded, SilverConfig(), InProcessExecutor())
    rejections = seeded.read("silver.rejections", columns=("reason", "source_uri", "row_index"))
    reasons, rows = rejections["reason"].to_pylist(), rejections["row_index"].to_pylist()
    lines = dict(zip(reasons, rows, strict=True))
    assert lines["malformed"] == 6
    assert lines["exact_dup"] in (1, 5)  # either copy of ORIGINALS[0], by the keeper rule
    uri = (tmp_path / "first.jsonl").resolve().as_uri()
    assert rejections["source_uri"].to_pylist() == [uri, uri]


def test_second_build_processes_only_new_records(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)
    build_silver(seeded, SilverConfig(), InProcessExecutor())
    _ingest(
        seeded,
        tmp_path,
        "second",
        [
            _chat(
                "What is a Python generator, in one line?",
                "A function that yields values lazily, one at a time.",
            )
        ],
    )
    report = build_silver(seeded, SilverConfig(), InProcessExecutor())
    assert (report.mode, report.rows_in, report.kept) == ("incremental", 1, 1)
    assert seeded.info("silver.conversations").rows == 5
    assert checks.rows_conserved(seeded).passed


def test_new_copies_of_published_records_are_rejected_pointing_to_them(
    seeded: Warehouse, tmp_path: Path
) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)
    build_silver(seeded, SilverConfig(), InProcessExecutor())
    published = set(seeded.read("silver.conversations")["record_id"].to_pylist())
    edited = ORIGINALS[1].replace("reverses in place", "reverses it in place")
    _ingest(seeded, tmp_path, "later", [ORIGINALS[2], edited])

    report = build_silver(seeded, SilverConfig(), InProcessExecutor())

    assert report.kept == 0
    rejections = {
        row["reason"]: row
        for row in seeded.read(
            "silver.rejections", row_filter="reason in ('exact_dup', 'near_dup')"
        ).to_pylist()
    }
    assert set(rejections) == {"exact_dup", "near_dup"}
    assert rejections["exact_dup"]["kept_record_id"] in published
    assert rejections["exact_dup"]["similarity"] == 1.0
    assert rejections["near_dup"]["kept_record_id"] in published
    assert 0.7 <= rejections["near_dup"]["similarity"] < 1.0
    assert set(seeded.read("silver.conversations")["record_id"].to_pylist()) == published


def test_changed_config_rebuilds_from_all_of_bronze(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)
    build_silver(seeded, SilverConfig(), InProcessExecutor())
    stricter = SilverConfig(dedup=DedupConfig(threshold=0.95))
    logged: list[str] = []

    report = build_silver(seeded, stricter, InProcessExecutor(), log=logged.append)

    assert report.mode == "full" and report.rows_in == 4
    assert "config changed" in logged[0]
    summary = seeded.snapshot_summary("silver.conversations")
    assert summary[CONFIG_HASH_KEY] == stricter.config_hash()
    assert seeded.info("silver.conversations").rows == 4


def test_nothing_new_writes_nothing_and_keeps_silver(seeded: Warehouse, tmp_path: Path) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)
    build_silver(seeded, SilverConfig(), InProcessExecutor())
    before = seeded.pin("silver.conversations", "silver.rejections")
    history = {name: len(seeded.table(name).snapshots()) for name in before}

    report = build_silver(seeded, SilverConfig(), InProcessExecutor())

    assert (report.mode, report.rows_in, report.kept) == ("incremental", 0, 0)
    assert seeded.pin(*before) == before
    assert {name: len(seeded.table(name).snapshots()) for name in before} == history
    assert report.written == before
    assert seeded.info("silver.conversations").rows == 4


def _chats(tag: str, count: int) -> list[str]:
    return [
        _chat(
            f"In the {tag} notes, what does step {n} of the recipe ask for?",
            f"Step {n} of the {tag} recipe asks you to stir for {n + 2} minutes.",
        )
        for n in range(count)
    ]


def test_an_ingest_during_a_build_is_left_for_the_next_build(
    seeded: Warehouse, tmp_path: Path
) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)
    read_snapshot = seeded.snapshot_id("bronze.records")

    def ingest_while_writing(message: str) -> None:
        if "records read from bronze" in message:  # after bronze was read, before the writes
            _ingest(seeded, tmp_path, "meanwhile", _chats("meanwhile", 3))

    report = build_silver(seeded, SilverConfig(), InProcessExecutor(), log=ingest_while_writing)

    assert seeded.snapshot_id("bronze.records") != read_snapshot  # the ingest did land
    assert report.read["bronze.records"] == read_snapshot
    summary = seeded.snapshot_summary("silver.conversations")
    assert inputs_from_summary(summary)["bronze.records"] == read_snapshot
    at = {**report.read, **report.written}
    outcome = checks.rows_conserved(seeded, at=at)
    assert outcome.passed, outcome.description
    assert outcome.metadata["bronze_rows"] == 4
    later = build_silver(seeded, SilverConfig(), InProcessExecutor())
    assert (later.mode, later.rows_in) == ("incremental", 3)
    assert checks.rows_conserved(seeded).passed


def test_of_two_concurrent_builds_the_later_fails_cleanly_and_writes_nothing(
    seeded: Warehouse, tmp_path: Path
) -> None:
    _ingest(seeded, tmp_path, "first", ORIGINALS)

    def other_build_commits_first(message: str) -> None:
        if "records read from bronze" in message:
            build_silver(seeded, SilverConfig(), InProcessExecutor())

    with pytest.raises(CommitConflictError, match="nothing was written"):
        build_silver(seeded, SilverConfig(), InProcessExecutor(), log=other_build_commits_first)

    assert seeded.info("silver.conversations").rows == 4
    assert checks.rows_conserved(seeded).passed
    assert checks.keys_unique(seeded, "silver.rejections").passed
