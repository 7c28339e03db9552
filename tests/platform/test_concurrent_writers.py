"""Concurrent writers lose nothing and duplicate nothing: real processes racing to commit."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from process_race import race, wait_at

from posttrain.platform import checks
from posttrain.platform.errors import CommitConflictError
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import SILVER_REJECTIONS
from posttrain.platform.warehouse import CommitRetry, Warehouse, WarehouseSettings


def _write_chats(path: Path, count: int, tag: str) -> Path:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Question {n} of {tag}: what is {n} squared?"},
                    {"role": "assistant", "content": f"{n} squared is {n * n}."},
                ]
            }
        )
        for n in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _open_after_barrier(home: str, barrier: Barrier) -> None:
    wait_at(barrier)
    Warehouse(WarehouseSettings.local(home)).table_names()


def _ingest_after_barrier(home: str, path: str, source: str, barrier: Barrier) -> None:
    wait_at(barrier)  # the racers also race to open a catalog that may not exist yet
    warehouse = Warehouse(WarehouseSettings.local(home))
    ingest(warehouse, [SourceSpec(path=Path(path), source=source)])


def _race(jobs: list[tuple[str, str, str]]) -> list[int | None]:
    return race(_ingest_after_barrier, jobs)


def test_two_concurrent_ingests_of_one_file_add_each_record_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Warehouse(WarehouseSettings.local(home)).ensure_table("bronze.records")
    path = _write_chats(tmp_path / "chats.jsonl", 3000, "same")

    exit_codes = _race([(str(home), str(path), "chats"), (str(home), str(path), "chats")])

    assert exit_codes == [0, 0]
    warehouse = Warehouse(WarehouseSettings.local(home))
    ids = warehouse.column("bronze.records", "record_id")
    assert len(ids) == 3000
    assert checks.keys_unique(warehouse, "bronze.records").passed


def test_eight_processes_opening_a_new_catalog_at_once_all_succeed(tmp_path: Path) -> None:
    home = str(tmp_path / "home")

    assert race(_open_after_barrier, [(home,)] * 8) == [0] * 8


def test_eight_concurrent_ingests_of_different_files_all_land(tmp_path: Path) -> None:
    home = tmp_path / "home"  # not even created: the racers also race to create the table
    jobs = [
        (str(home), str(_write_chats(tmp_path / f"part{k}.jsonl", 200, f"part{k}")), f"part{k}")
        for k in range(8)
    ]

    exit_codes = _race(jobs)

    assert exit_codes == [0] * 8
    warehouse = Warehouse(WarehouseSettings.local(home))
    sources = warehouse.column("bronze.records", "source")
    assert len(sources) == 8 * 200
    assert sorted(pc.unique(sources).to_pylist()) == sorted(job[2] for job in jobs)


def _rejections(*ids: str) -> pa.Table:
    columns = {name: pa.nulls(len(ids)) for name in SILVER_REJECTIONS.names}
    columns |= {
        "record_id": pa.array(ids),
        "reason": pa.array(["empty"] * len(ids)),
        "detail": pa.array(["no text"] * len(ids)),
    }
    return pa.table(columns).cast(SILVER_REJECTIONS)


def test_append_new_adds_only_keys_the_table_lacks(warehouse: Warehouse) -> None:
    warehouse.append("silver.rejections", _rejections("a", "b"), Lineage("t"))
    result = warehouse.append_new(
        "silver.rejections", _rejections("b", "c"), "record_id", Lineage("t")
    )
    assert (result.rows_added, result.rows_already_present) == (1, 1)
    assert sorted(warehouse.column("silver.rejections", "record_id").to_pylist()) == [
        "a",
        "b",
        "c",
    ]


def test_a_write_that_keeps_losing_fails_in_one_line_saying_nothing_was_written(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    local = WarehouseSettings.local(home)
    # A short SQLite busy timeout, so each attempt gives up on the lock in 50 ms.
    settings = local.model_copy(update={"catalog_uri": f"{local.catalog_uri}?timeout=0.05"})
    warehouse = Warehouse(settings, retry=CommitRetry(attempts=3, base_s=0.01, max_s=0.02))
    warehouse.append("silver.rejections", _rejections("a"), Lineage("t"))
    before = warehouse.snapshot_id("silver.rejections")
    other_writer = sqlite3.connect(home / "catalog.db")
    other_writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CommitConflictError) as raised:
            warehouse.append("silver.rejections", _rejections("b"), Lineage("t"))
    finally:
        other_writer.rollback()
        other_writer.close()

    message = str(raised.value)
    assert "\n" not in message
    assert "nothing was written" in message and "re-running is safe" in message
    assert "3 attempts" in message
    assert warehouse.snapshot_id("silver.rejections") == before
    assert warehouse.column("silver.rejections", "record_id").to_pylist() == ["a"]


def test_a_write_computed_from_an_old_snapshot_is_refused(warehouse: Warehouse) -> None:
    first = warehouse.append("silver.rejections", _rejections("a"), Lineage("t"))
    warehouse.append("silver.rejections", _rejections("b"), Lineage("t"))

    with pytest.raises(CommitConflictError, match="nothing was written"):
        warehouse.append(
            "silver.rejections", _rejections("c"), Lineage("t"), expected_snapshot=first
        )

    assert sorted(warehouse.column("silver.rejections", "record_id").to_pylist()) == ["a", "b"]


def test_appending_no_rows_commits_nothing(warehouse: Warehouse) -> None:
    first = warehouse.append("silver.rejections", _rejections("a"), Lineage("t"))
    empty: Callable[[], pa.Table] = lambda: _rejections()  # noqa: E731
    assert warehouse.append("silver.rejections", empty(), Lineage("t")) == first
    assert warehouse.snapshot_id("silver.rejections") == first
