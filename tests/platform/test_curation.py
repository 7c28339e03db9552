"""Curation on branches: edits are invisible on main until publish; publish is refused when
checks fail or main moved; of two racing publishes exactly one wins."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from curated_warehouse import build
from process_race import SPAWN, race, wait_at

from posttrain.platform import curation
from posttrain.platform.curation import CurationError, PublishRefusedError
from posttrain.platform.query import head, run_query
from posttrain.platform.schemas import TableName
from posttrain.platform.versions import resolve
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

GOLD = TableName.GOLD_SFT


@pytest.fixture
def curated(warehouse: Warehouse) -> Warehouse:
    build(warehouse, {"r1": "alpha one", "r2": "beta two", "r3": "gamma three"})
    return warehouse


def _ids(warehouse: Warehouse, spec: str = GOLD) -> list[str]:
    name, snapshot = resolve(warehouse, spec)
    return sorted(warehouse.read(name, snapshot_id=snapshot)["record_id"].to_pylist())


def test_a_branch_edit_is_invisible_on_main_until_publish(curated: Warehouse) -> None:
    main_before = curated.snapshot_id(GOLD)
    curation.create_branch(curated, GOLD, "review-x", curator="ana")
    curation.drop_rows(curated, GOLD, "review-x", "record_id = 'r2'", curator="ana")

    # Every reader of main: the assets' pins, the loaders' read, show, query, TABLE@main.
    assert curated.pin(GOLD) == {GOLD: main_before}
    assert curated.read(GOLD).num_rows == 3
    assert _ids(curated) == ["r1", "r2", "r3"]
    assert _ids(curated, f"{GOLD}@main") == ["r1", "r2", "r3"]
    assert head(curated, GOLD, where="record_id = 'r2'").num_rows == 1
    assert run_query(curated, "select count(*) n from gold.sft").to_pylist() == [{"n": 3}]
    assert _ids(curated, f"{GOLD}@review-x") == ["r1", "r3"]

    result = curation.publish(curated, GOLD, "review-x")
    assert result.previous == main_before
    assert _ids(curated) == ["r1", "r3"]
    assert run_query(curated, "select count(*) n from gold.sft").to_pylist() == [{"n": 2}]
    assert curation.list_branches(curated, GOLD) == []


def test_a_fix_keeps_the_record_id_and_names_the_original_and_the_curator(
    curated: Warehouse,
) -> None:
    curation.create_branch(curated, GOLD, "fix-1", curator="ana")
    original = curation.branch_snapshot(curated, GOLD, "fix-1")
    edit = curation.fix_record(curated, GOLD, "fix-1", "r1", {"license": "CC0"}, curator="bo")

    row = curated.read(GOLD, snapshot_id=edit.snapshot_id, row_filter="record_id = 'r1'")
    assert row["license"].to_pylist() == ["CC0"]
    summary = curated.snapshot_summary(GOLD, edit.snapshot_id)
    assert summary["posttrain.edit.fixed-from"] == f"r1@{original}"
    assert summary["posttrain.curator"] == "bo"
    assert summary["posttrain.edit.columns"] == "license"
    assert curated.read(GOLD, row_filter="record_id = 'r1'")["license"].to_pylist() == ["MIT"]


def test_relabel_sets_a_column_on_the_matching_rows_only(curated: Warehouse) -> None:
    curation.create_branch(curated, GOLD, "lic")
    curation.relabel(curated, GOLD, "lic", "record_id in ('r1', 'r3')", "license", "Apache-2.0")
    snapshot = curation.branch_snapshot(curated, GOLD, "lic")
    rows = curated.read(GOLD, snapshot_id=snapshot).sort_by("record_id").to_pylist()
    assert [r["license"] for r in rows] == ["Apache-2.0", "MIT", "Apache-2.0"]
    assert [info.edits for info in curation.list_branches(curated, GOLD)] == [1]


def test_publish_is_refused_when_main_moved_and_says_what_moved(curated: Warehouse) -> None:
    curation.create_branch(curated, GOLD, "late")
    curation.drop_rows(curated, GOLD, "late", "record_id = 'r1'")
    cut_from = curated.snapshot_id(GOLD)
    curation.create_branch(curated, GOLD, "early")
    curation.drop_rows(curated, GOLD, "early", "record_id = 'r3'")
    curation.publish(curated, GOLD, "early")

    with pytest.raises(PublishRefusedError) as refused:
        curation.publish(curated, GOLD, "late")
    message = str(refused.value)
    assert f"was at snapshot {cut_from}" in message
    assert f"now at {curated.snapshot_id(GOLD)}" in message
    assert "curation by" in message
    assert _ids(curated) == ["r1", "r2"]


def test_publish_is_refused_when_a_check_fails_on_the_branch(curated: Warehouse) -> None:
    curation.create_branch(curated, GOLD, "bad")
    # A relabel of the key is refused outright; an invented record fails the layer check.
    with pytest.raises(CurationError, match="key"):
        curation.relabel(curated, GOLD, "bad", "record_id = 'r1'", "record_id", "zz")
    table = curated.table(GOLD)
    invented = curated.read(GOLD, row_filter="record_id = 'r1'").to_pylist()
    invented[0]["record_id"] = "not-in-silver"
    import pyarrow as pa

    from posttrain.platform.schemas import TABLES

    table.append(pa.Table.from_pylist(invented, schema=TABLES[GOLD].schema), branch="bad")
    before = curated.snapshot_id(GOLD)
    with pytest.raises(PublishRefusedError, match="not-in-silver"):
        curation.publish(curated, GOLD, "bad")
    assert curated.snapshot_id(GOLD) == before


def test_bad_edits_are_refused_with_the_reason(curated: Warehouse) -> None:
    with pytest.raises(CurationError, match="no branch 'nope'"):
        curation.drop_rows(curated, GOLD, "nope", "record_id = 'r1'")
    curation.create_branch(curated, GOLD, "b")
    with pytest.raises(CurationError, match="already has a ref"):
        curation.create_branch(curated, GOLD, "b")
    with pytest.raises(CurationError, match="matches no row"):
        curation.drop_rows(curated, GOLD, "b", "record_id = 'zzz'")
    with pytest.raises(CurationError, match="no column 'colour'"):
        curation.fix_record(curated, GOLD, "b", "r1", {"colour": "red"})
    with pytest.raises(CurationError, match="0 rows"):
        curation.fix_record(curated, GOLD, "b", "missing", {"license": "x"})


def _publish_in_process(home: str, branch: str, results: Queue[str], barrier: Barrier) -> None:
    warehouse = Warehouse(WarehouseSettings.local(home))
    wait_at(barrier)
    try:
        curation.publish(warehouse, GOLD, branch)
        results.put(f"won {branch}")
    except PublishRefusedError as exc:
        results.put(f"refused {exc}")


def test_of_two_racing_publishes_exactly_one_wins(curated: Warehouse, tmp_path: Path) -> None:
    for branch, doomed in (("a", "r1"), ("b", "r2")):
        curation.create_branch(curated, GOLD, branch)
        curation.drop_rows(curated, GOLD, branch, f"record_id = '{doomed}'")
    results: Queue[str] = SPAWN.Queue()
    home = str(tmp_path / "home")

    exit_codes = race(_publish_in_process, [(home, b, results) for b in "ab"])

    assert exit_codes == [0, 0]
    outcomes = sorted(results.get(timeout=10) for _ in exit_codes)
    won = [o for o in outcomes if o.startswith("won")]
    refused = [o for o in outcomes if o.startswith("refused")]
    assert len(won) == 1 and len(refused) == 1, outcomes
    assert "main has moved" in refused[0] or "published" in refused[0]
    winner = won[0].split()[1]
    assert _ids(curated) == (["r2", "r3"] if winner == "a" else ["r1", "r3"])
