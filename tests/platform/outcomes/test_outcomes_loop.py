"""The loop: a version, late outcomes, the next version; published versions never change."""

from __future__ import annotations

from datetime import timedelta

import pyarrow.parquet as pq
from outcomes_data import T0, at

from posttrain.platform.outcomes.ingest import record_outcomes
from posttrain.platform.outcomes.labeled import LABELED
from posttrain.platform.outcomes.loop import cut_version
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.versions import get_version
from posttrain.platform.warehouse import Warehouse

POLICY = LateArrivalPolicy(window_hours=24)


def _files(warehouse: Warehouse, snapshot_id: int) -> dict[str, bytes]:
    table = warehouse.table(LABELED)
    tasks = table.scan(snapshot_id=snapshot_id).plan_files()
    return {
        task.file.file_path: table.io.new_input(task.file.file_path).open().read() for task in tasks
    }


def test_late_outcomes_go_into_the_next_version_and_v1_keeps_its_bytes(
    conversations: Warehouse,
) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 0.1, "arrived_at": at(-2)}]
    )
    v1 = cut_version(conversations, POLICY, as_of=T0).version
    assert v1 is not None and v1.version == "v1"
    v1_snapshot = v1.snapshots[LABELED]
    assert v1_snapshot is not None
    v1_files = _files(conversations, v1_snapshot)
    v1_rows = conversations.read(LABELED, snapshot_id=v1_snapshot)

    record_outcomes(
        conversations,
        [  # late: after v1 was cut
            {"record_id": "r1", "kind": "reward", "value": 0.8, "arrived_at": at(+1)},
            {"record_id": "r6", "kind": "reward", "value": 1.0, "arrived_at": at(+1)},
        ],
    )
    v2 = cut_version(conversations, POLICY, as_of=T0 + timedelta(hours=2)).version

    assert v2 is not None and v2.version == "v2"
    rows = {
        r["record_id"]: r
        for r in conversations.read(LABELED, snapshot_id=v2.snapshots[LABELED]).to_pylist()
    }
    assert rows["r1"]["reward"] == 0.8 and rows["r6"]["reward"] == 1.0
    assert v2.outcome_cutoff is not None and v1.outcome_cutoff is not None
    assert v2.outcome_cutoff > v1.outcome_cutoff
    # v1 is untouched: same snapshot, same rows, same file bytes.
    assert get_version(conversations, "labeled", "v1").snapshots[LABELED] == v1_snapshot
    assert conversations.read(LABELED, snapshot_id=v1_snapshot).equals(v1_rows)
    assert _files(conversations, v1_snapshot) == v1_files
    assert {r["record_id"]: r["reward"] for r in v1_rows.to_pylist()}["r1"] == 0.1


def test_no_new_outcomes_no_new_version(conversations: Warehouse) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 0.1, "arrived_at": at(-2)}]
    )
    cut_version(conversations, POLICY, as_of=T0)

    again = cut_version(conversations, POLICY, as_of=T0)

    assert again.version is None and "nothing new since labeled@v1" in again.why_not


def test_a_version_records_the_outcomes_snapshot_it_included(conversations: Warehouse) -> None:
    report = record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 0.1, "arrived_at": at(-2)}]
    )

    version = cut_version(conversations, POLICY, as_of=T0).version

    assert version is not None
    assert version.snapshots["bronze.outcomes"] == report.snapshot_id
    assert version.outcomes_included is not None
    assert version.outcomes_included.startswith(f"bronze.outcomes@{report.snapshot_id}: 1 outcomes")


def test_v1_data_files_are_parquet_readable_after_v2(conversations: Warehouse) -> None:
    record_outcomes(
        conversations, [{"record_id": "r1", "kind": "reward", "value": 0.1, "arrived_at": at(-2)}]
    )
    v1 = cut_version(conversations, POLICY, as_of=T0).version
    assert v1 is not None
    record_outcomes(
        conversations, [{"record_id": "r2", "kind": "reward", "value": 0.5, "arrived_at": at(+1)}]
    )
    cut_version(conversations, POLICY, as_of=T0 + timedelta(hours=2))

    table = conversations.table(LABELED)
    snapshot = v1.snapshots[LABELED]
    assert snapshot is not None
    assert table.metadata.refs["labeled/v1"].snapshot_id == snapshot
    for task in table.scan(snapshot_id=snapshot).plan_files():
        assert pq.read_metadata(task.file.file_path.removeprefix("file://")).num_rows > 0


def test_two_cuts_racing_make_one_version_and_the_loser_says_nothing_was_written(
    conversations: Warehouse,
) -> None:
    import threading

    from posttrain.platform.errors import PosttrainError
    from posttrain.platform.versions import versions

    record_outcomes(
        conversations,
        [{"record_id": "r1", "kind": "reward", "value": 0.1, "arrived_at": at(-2)}],
    )
    errors: list[Exception] = []

    def cut() -> None:
        try:
            cut_version(conversations, POLICY, as_of=T0)
        except PosttrainError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=cut) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    made = [v.version for v in versions(conversations, "labeled")]
    assert made == ["v1"]
    assert len(conversations.table(LABELED).snapshots()) == 1
    assert len(errors) <= 1
