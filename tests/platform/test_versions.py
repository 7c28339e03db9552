"""Corpus versions: tags plus one row written last; TABLE@REF; rollback."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from versions_data import build

from posttrain.platform import versions as v
from posttrain.platform.errors import (
    ConfigError,
    RefNotFoundError,
    VersionError,
    VersionExistsError,
)
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

GOLD = TableName.GOLD_SFT


def test_a_version_tags_every_table_at_its_snapshot_and_records_one_row(
    warehouse: Warehouse,
) -> None:
    pinned = build(warehouse, range(3))
    version = v.create_version(warehouse, "sft", "v1", created_by="ana")
    assert version.snapshots == {**pinned, TableName.GOLD_SFT_PACKED: None}
    assert pinned[TableName.SILVER_REJECTIONS] is None  # empty: nothing to tag
    for table in (TableName.SILVER_CONVERSATIONS, GOLD):
        assert warehouse.table(table).metadata.refs["sft/v1"].snapshot_id == pinned[table]
    (row,) = v.events(warehouse)
    assert (row.event, row.corpus, row.version, row.created_by) == ("create", "sft", "v1", "ana")
    assert row.config_hashes[GOLD] == "goldcfg"
    assert row.code_version


def test_readers_resolve_a_version_to_its_pinned_snapshot_after_the_table_moves_on(
    warehouse: Warehouse,
) -> None:
    first = build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    build(warehouse, range(3, 5))
    assert v.resolve(warehouse, "gold.sft@v1") == (GOLD, first[GOLD])
    assert v.resolve(warehouse, "gold.sft@sft/v1") == (GOLD, first[GOLD])
    assert v.resolve(warehouse, "gold.sft") == (GOLD, warehouse.snapshot_id(GOLD))
    assert warehouse.read(GOLD, snapshot_id=v.resolve(warehouse, "gold.sft@v1")[1]).num_rows == 3


def test_a_snapshot_id_tag_or_branch_resolves_too(warehouse: Warehouse) -> None:
    first = build(warehouse, range(2))
    build(warehouse, range(2, 4))
    table = warehouse.table(GOLD)
    table.manage_snapshots().create_tag(first[GOLD], "golden").create_branch(
        first[GOLD], "review"
    ).commit()
    assert v.resolve(warehouse, f"gold.sft@{first[GOLD]}") == (GOLD, first[GOLD])
    assert v.resolve(warehouse, "gold.sft@golden") == (GOLD, first[GOLD])
    assert v.resolve(warehouse, "gold.sft@review") == (GOLD, first[GOLD])


def test_an_unknown_ref_names_the_versions_and_tags_there_are(warehouse: Warehouse) -> None:
    build(warehouse, range(2))
    v.create_version(warehouse, "sft", "v1")
    with pytest.raises(RefNotFoundError, match="versions: v1; tags and branches: main"):
        v.resolve(warehouse, "gold.sft@v9")
    with pytest.raises(RefNotFoundError, match="no snapshot 123"):
        v.resolve(warehouse, "gold.sft@123")


def test_a_failure_after_tagging_one_table_leaves_no_visible_version(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(warehouse, range(3))
    real_tag = v._tag
    calls: list[str] = []

    def crash_on_second(wh: Warehouse, table: str, tag: str, snapshot_id: int, *a: Any) -> None:
        calls.append(table)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between two tables
        real_tag(wh, table, tag, snapshot_id, *a)

    monkeypatch.setattr(v, "_tag", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        v.create_version(warehouse, "sft", "v3")
    assert "sft/v3" in warehouse.table(calls[0]).metadata.refs  # one table was tagged
    assert v.versions(warehouse) == []
    with pytest.raises(RefNotFoundError):
        v.resolve(warehouse, f"{calls[0]}@v3")
    with pytest.raises(RefNotFoundError):
        v.resolve(warehouse, f"{calls[0]}@sft/v3")  # the stray tag is not a version
    monkeypatch.setattr(v, "_tag", real_tag)
    assert v.create_version(warehouse, "sft", "v3").version == "v3"  # re-running completes it


def test_a_second_create_of_the_same_name_is_refused_and_changes_nothing(
    warehouse: Warehouse,
) -> None:
    first = build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    build(warehouse, range(3, 6))
    with pytest.raises(VersionExistsError, match="already has version 'v1'"):
        v.create_version(warehouse, "sft", "v1")
    assert v.resolve(warehouse, "gold.sft@v1") == (GOLD, first[GOLD])
    assert warehouse.table(GOLD).metadata.refs["sft/v1"].snapshot_id == first[GOLD]
    assert len(v.events(warehouse)) == 1


def test_two_concurrent_creates_of_one_name_exactly_one_wins(tmp_path: Path) -> None:
    setup = Warehouse(WarehouseSettings.local(tmp_path))
    build(setup, range(3))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def create(who: str) -> None:
        wh = Warehouse(WarehouseSettings.local(tmp_path))
        barrier.wait()
        try:
            v.create_version(wh, "sft", "v1", created_by=who)
            outcomes.append("won")
        except VersionExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(w,)) for w in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "won"]
    (row,) = v.versions(setup, "sft")
    for table, snapshot_id in row.snapshots.items():
        if snapshot_id is not None:
            assert setup.table(table).metadata.refs["sft/v1"].snapshot_id == snapshot_id


def test_the_loser_of_a_race_points_the_tags_back_at_the_winners_snapshots(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    build(warehouse, range(3, 5))
    # The loser checked before the winner's row existed, then tagged newer snapshots.
    monkeypatch.setattr(v, "_refuse_existing", lambda *a: None)
    with pytest.raises(VersionExistsError, match="while this call was tagging"):
        v.create_version(warehouse, "sft", "v1")  # loses the row's compare-and-swap
    assert warehouse.table(GOLD).metadata.refs["sft/v1"].snapshot_id == first[GOLD]
    assert len(v.events(warehouse)) == 1


def test_pinned_snapshots_are_versioned_instead_of_the_current_ones(warehouse: Warehouse) -> None:
    first = build(warehouse, range(3))
    build(warehouse, range(3, 5))
    version = v.create_version(warehouse, "sft", "v1", pinned={GOLD: first[GOLD]})
    assert version.snapshots[GOLD] == first[GOLD]
    with pytest.raises(ConfigError, match="not a table of corpus"):
        v.create_version(warehouse, "sft", "v2", pinned={"bronze.records": 1})


@pytest.mark.parametrize("name", ["main", "3", "v 3", "", "x/y"])
def test_bad_version_names_are_refused(warehouse: Warehouse, name: str) -> None:
    with pytest.raises(ConfigError, match="bad version name"):
        v.create_version(warehouse, "sft", name)


def test_an_unknown_corpus_is_refused_with_the_known_ones(warehouse: Warehouse) -> None:
    with pytest.raises(ConfigError, match="known corpora: \\['sft'"):
        v.create_version(warehouse, "nope", "v1")


def test_rollback_moves_main_back_and_is_recorded(warehouse: Warehouse) -> None:
    first = build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    second = build(warehouse, range(3, 5))
    event = v.rollback(warehouse, "gold.sft", "v1", created_by="ops")
    assert warehouse.snapshot_id(GOLD) == first[GOLD]
    assert warehouse.read(GOLD).num_rows == 3
    assert (event.previous_snapshots, event.snapshots) == (
        {GOLD: second[GOLD]},
        {GOLD: first[GOLD]},
    )
    assert [e.event for e in v.events(warehouse)] == ["create", "rollback"]
    assert [x.version for x in v.versions(warehouse)] == ["v1"]  # a rollback is no version


def test_rollback_to_an_empty_version_of_the_table_is_refused(warehouse: Warehouse) -> None:
    build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    warehouse.ensure_table(TableName.GOLD_SFT_PACKED)
    with pytest.raises(VersionError, match="empty"):
        v.rollback(warehouse, "gold.sft_packed", "v1")


def test_a_recut_moves_the_version_for_readers_and_keeps_the_history(warehouse: Warehouse) -> None:
    build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    later = build(warehouse, range(3, 4))
    v.record_recut(warehouse, "sft", "v1", {GOLD: later[GOLD]})
    assert v.resolve(warehouse, "gold.sft@v1") == (GOLD, later[GOLD])
    assert warehouse.table(GOLD).metadata.refs["sft/v1"].snapshot_id == later[GOLD]
    assert [e.event for e in v.events(warehouse)] == ["create", "recut"]
