"""silver.labeled: latest outcome per kind, full history, the late-arrival window."""

from __future__ import annotations

from datetime import datetime

from outcomes_data import T0, at

from posttrain.platform.outcomes.ingest import record_outcomes
from posttrain.platform.outcomes.labeled import (
    LABELED,
    OUTCOME_CUTOFF_KEY,
    OUTCOMES_INCLUDED_KEY,
    cut_labeled,
    labeled_checks,
)
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.warehouse import Warehouse

POLICY = LateArrivalPolicy(window_hours=24)


def _by_id(warehouse: Warehouse) -> dict[str, dict[str, object]]:
    return {row["record_id"]: row for row in warehouse.read(LABELED).to_pylist()}


def test_the_latest_outcome_of_each_kind_wins_and_history_keeps_all(
    conversations: Warehouse,
) -> None:
    record_outcomes(
        conversations,
        [
            {"record_id": "r1", "kind": "reward", "value": 0.2, "arrived_at": at(-5)},
            {"record_id": "r1", "kind": "reward", "value": 0.9, "arrived_at": at(-3)},
            {"record_id": "r1", "kind": "test_result", "value": 1.0, "arrived_at": at(-4)},
            {"record_id": "r1", "kind": "feedback", "text": "nice", "arrived_at": at(-4)},
        ],
    )

    cut_labeled(conversations, POLICY, as_of=T0)

    row = _by_id(conversations)["r1"]
    assert (row["reward"], row["test_result"], row["feedback"]) == (0.9, 1.0, "nice")
    assert row["num_outcomes"] == 4
    history = [(o["kind"], o["value"]) for o in row["outcomes"]]  # type: ignore[attr-defined]
    # Oldest first; the two outcomes that arrived together are ordered by outcome_id.
    assert history[0] == ("reward", 0.2) and history[-1] == ("reward", 0.9)
    assert set(history[1:3]) == {("test_result", 1.0), ("feedback", None)}


def test_a_cut_holds_old_records_and_labeled_young_ones_but_not_unlabeled_young_ones(
    conversations: Warehouse,
) -> None:
    record_outcomes(
        conversations, [{"record_id": "r5", "kind": "reward", "value": 1.0, "arrived_at": at(-0.5)}]
    )

    cut_labeled(conversations, POLICY, as_of=T0)

    assert sorted(_by_id(conversations)) == ["r1", "r2", "r3", "r4", "r5"]  # r6: too young


def test_outcomes_that_arrive_after_the_cut_time_are_not_in_it(conversations: Warehouse) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(+1)}]
    )

    cut = cut_labeled(conversations, POLICY, as_of=T0)

    assert _by_id(conversations)["r1"]["reward"] is None
    assert cut.outcomes_included == 0 and cut.outcome_cutoff is None


def test_the_snapshot_records_which_outcomes_it_included(conversations: Warehouse) -> None:
    report = record_outcomes(
        conversations,
        [
            {"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(-2)},
            {"record_id": "r2", "kind": "reward", "value": 0.0, "arrived_at": at(-1)},
        ],
    )

    cut = cut_labeled(conversations, POLICY, as_of=T0)

    summary = conversations.snapshot_summary(LABELED, cut.snapshot_id)
    assert summary[OUTCOME_CUTOFF_KEY] == datetime.fromisoformat(at(-1)).isoformat()
    assert summary[OUTCOMES_INCLUDED_KEY] == "2"
    assert summary["posttrain.input.bronze.outcomes"] == str(report.snapshot_id)


def test_the_same_inputs_and_cut_time_commit_nothing_new(conversations: Warehouse) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(-2)}]
    )
    first = cut_labeled(conversations, POLICY, as_of=T0)

    again = cut_labeled(conversations, POLICY, as_of=T0)

    assert not again.committed and again.snapshot_id == first.snapshot_id
    assert len(conversations.table(LABELED).snapshots()) == 1


def test_a_cut_reads_the_pinned_outcomes_snapshot_not_newer_ones(
    conversations: Warehouse,
) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(-2)}]
    )
    pinned = conversations.pin("silver.conversations", "bronze.records", "bronze.outcomes")
    record_outcomes(
        conversations, [{"record_id": "r2", "kind": "reward", "value": 1.0, "arrived_at": at(-1)}]
    )

    cut = cut_labeled(conversations, POLICY, as_of=T0, at=pinned)

    assert cut.outcomes_included == 1 and _by_id(conversations)["r2"]["reward"] is None


def test_checks_pass_on_a_cut(conversations: Warehouse) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 1.0, "arrived_at": at(-2)}]
    )
    cut = cut_labeled(conversations, POLICY, as_of=T0)

    results = labeled_checks(conversations, cut.snapshot_id)

    assert all(outcome.passed for outcome in results.values()), results
