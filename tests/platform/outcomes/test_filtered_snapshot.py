"""Filtered snapshots: frozen rows of a pinned snapshot, a tag, and where they came from."""

from __future__ import annotations

import pytest
from outcomes_data import T0, at

from posttrain.platform.errors import ConfigError, QueryError
from posttrain.platform.outcomes.ingest import record_outcomes
from posttrain.platform.outcomes.labeled import LABELED, cut_labeled
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.outcomes.snapshot import LINEAGE_TABLE, freeze
from posttrain.platform.warehouse import Warehouse

FILTER = "reward > 0 and source = 'agent'"


@pytest.fixture
def labeled(conversations: Warehouse) -> Warehouse:
    record_outcomes(
        conversations,
        [
            {"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(-2)},
            {"record_id": "r2", "kind": "reward", "value": -1.0, "arrived_at": at(-2)},
            {"record_id": "r5", "kind": "reward", "value": 1.0, "arrived_at": at(-1)},  # web
        ],
    )
    cut_labeled(conversations, LateArrivalPolicy(), as_of=T0)
    return conversations


def test_freezes_the_filtered_rows_as_a_named_tagged_table(labeled: Warehouse) -> None:
    source_snapshot = labeled.snapshot_id(LABELED)

    frozen = freeze(labeled, LABELED, FILTER, "agent-pos")

    assert frozen.table == "snapshots.agent_pos" and frozen.rows == 1
    rows = labeled.read("snapshots.agent_pos").to_pylist()
    assert [row["record_id"] for row in rows] == ["r1"]
    table = labeled.table("snapshots.agent_pos")
    assert table.metadata.refs["agent-pos"].snapshot_id == frozen.snapshot_id
    summary = labeled.snapshot_summary("snapshots.agent_pos", frozen.snapshot_id)
    assert summary["posttrain.source-table"] == LABELED
    assert summary["posttrain.source-snapshot"] == str(source_snapshot)
    assert summary["posttrain.filter"] == FILTER
    assert summary["posttrain.outcome-cutoff"] == frozen.outcome_cutoff != "none"


def test_a_lineage_row_records_source_snapshot_filter_and_cutoff(labeled: Warehouse) -> None:
    frozen = freeze(labeled, LABELED, FILTER, "agent-pos")

    (row,) = labeled.read(LINEAGE_TABLE).to_pylist()
    assert (row["name"], row["source_table"], row["source_snapshot_id"], row["filter"]) == (
        "agent-pos",
        LABELED,
        frozen.source_snapshot_id,
        FILTER,
    )
    assert row["outcome_cutoff"] == frozen.outcome_cutoff and row["rows"] == 1


def test_later_writes_to_the_source_do_not_change_a_frozen_snapshot(labeled: Warehouse) -> None:
    frozen = freeze(labeled, LABELED, FILTER, "agent-pos")
    record_outcomes(
        labeled, [{"record_id": "r3", "kind": "reward", "value": 1.0, "arrived_at": at(1)}]
    )
    cut_labeled(labeled, LateArrivalPolicy(), as_of=T0.replace(hour=14))

    assert labeled.read("snapshots.agent_pos").num_rows == frozen.rows == 1


def test_a_name_is_frozen_once(labeled: Warehouse) -> None:
    freeze(labeled, LABELED, FILTER, "agent-pos")

    with pytest.raises(ConfigError, match="'agent-pos' already exists"):
        freeze(labeled, LABELED, "reward < 0", "agent-pos")


def test_a_filter_that_does_not_parse_says_where(labeled: Warehouse) -> None:
    with pytest.raises(QueryError, match=r"--filter .*cannot parse at column 12 \(at '>> 0'\)"):
        freeze(labeled, LABELED, "reward > 0 >> 0", "bad")

    assert not labeled.exists("snapshots.bad")


def test_a_filter_on_an_unknown_column_lists_the_columns(labeled: Warehouse) -> None:
    with pytest.raises(QueryError, match=r"--filter 'rewrd > 0'.*columns: record_id"):
        freeze(labeled, LABELED, "rewrd > 0", "bad")


def test_a_filter_matching_nothing_freezes_nothing(labeled: Warehouse) -> None:
    with pytest.raises(ConfigError, match="matches no row"):
        freeze(labeled, LABELED, "reward > 5", "empty")

    assert not labeled.exists("snapshots.empty")


def test_a_bad_name_is_refused(labeled: Warehouse) -> None:
    with pytest.raises(ConfigError, match="lower-case letters"):
        freeze(labeled, LABELED, FILTER, "../Agent Pos")
