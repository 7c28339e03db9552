"""The weighted blend: pinned once, the same bytes on every replay, split across ranks and
workers with no overlap and no gap, and resumable from per-source offsets."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from blend_data import NUMS, NUMS_ROWS, NUMS_SCHEMA, nums
from pydantic import ValidationError

from posttrain.platform.blend import (
    BlendSource,
    BlendSpec,
    PinnedBlend,
    iter_blend,
    iter_blend_batches,
    pin_blend,
    state_at,
)
from posttrain.platform.blend.schedule import Schedule
from posttrain.platform.blend.stream import Shard, blocks
from posttrain.platform.errors import ConfigError, SnapshotNotFoundError, TableNotFoundError
from posttrain.platform.lineage import Lineage
from posttrain.platform.refs import ScanPlan, data_files, resolve
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

V1 = "gold.sft@v1"
LOW = "snapshots.low_nums@low-nums"


def _spec(seed: int = 0, exhausted: str = "drop", **weights: float) -> BlendSpec:
    refs = {"v1": V1, "nums": NUMS, "low": LOW}
    return BlendSpec.model_validate(
        {
            "sources": [{"ref": refs[k], "weight": w} for k, w in weights.items()],
            "seed": seed,
            "exhausted": exhausted,
        }
    )


@pytest.fixture(scope="module")
def pinned(blend_warehouse: Warehouse) -> PinnedBlend:
    return pin_blend(blend_warehouse, _spec(seed=7, v1=2, nums=1, low=1))


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row["_source"], str(row.get("record_id") or row.get("id"))


def _table_order(warehouse: Warehouse, pinned: PinnedBlend, index: int) -> list[int]:
    source = pinned.sources[index]
    plan = ScanPlan(resolve(warehouse, source.pinned_ref), ("id",))
    return [i for batch in plan.batches() for i in batch["id"].to_pylist()]


def _stream_hash(batches: Any) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def test_pinning_resolves_every_reference_to_its_snapshot_and_survives_json(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    by_ref = {source.ref: source for source in pinned.sources}
    assert by_ref[V1].table == "gold.sft" and by_ref[V1].rows == 20
    assert by_ref[NUMS].rows == NUMS_ROWS and by_ref[LOW].rows == 25
    assert by_ref[V1].snapshot_id == resolve(blend_warehouse, V1).snapshot_id
    assert [s.share for s in pinned.sources] == [0.5, 0.25, 0.25]
    assert PinnedBlend.model_validate_json(pinned.model_dump_json()) == pinned


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_a_weight_that_is_not_positive_and_finite_is_refused_naming_the_source(
    weight: float,
) -> None:
    with pytest.raises(ValidationError, match=r"gold\.sft@v1.*positive, finite"):
        BlendSource(ref=V1, weight=weight)


def test_weights_are_relative_so_scaled_weights_pin_the_same_shares(
    blend_warehouse: Warehouse,
) -> None:
    a = pin_blend(blend_warehouse, _spec(v1=3, nums=1))
    b = pin_blend(blend_warehouse, _spec(v1=0.75, nums=0.25))
    assert [s.share for s in a.sources] == [s.share for s in b.sources] == [0.75, 0.25]


def test_a_source_listed_twice_or_no_source_at_all_is_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        BlendSpec(sources=[BlendSource(ref=NUMS), BlendSource(ref=NUMS, weight=2)])
    with pytest.raises(ValidationError, match="at least one source"):
        BlendSpec(sources=[])


def test_a_reference_that_names_nothing_fails_pinning_naming_it(
    blend_warehouse: Warehouse,
) -> None:
    with pytest.raises(TableNotFoundError, match=r"gold\.nope"):
        pin_blend(blend_warehouse, BlendSpec(sources=[BlendSource(ref="gold.nope")]))
    with pytest.raises(SnapshotNotFoundError, match="v9"):
        pin_blend(blend_warehouse, BlendSpec(sources=[BlendSource(ref="gold.sft@v9")]))
    with pytest.raises(ConfigError, match=r"t\.nums.*no column.*nope"):
        pin_blend(blend_warehouse, BlendSpec(sources=[BlendSource(ref=NUMS)], columns=["nope"]))


def test_one_pass_yields_every_row_of_every_source_once_in_table_order(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    rows = list(iter_blend(blend_warehouse, pinned))
    assert len(rows) == 20 + NUMS_ROWS + 25
    assert [r["id"] for r in rows if r["_source"] == NUMS] == _table_order(
        blend_warehouse, pinned, 1
    )
    assert [r["id"] for r in rows if r["_source"] == LOW] == list(range(25))
    v1 = [r["record_id"] for r in rows if r["_source"] == V1]
    # The version, not the 10 rows appended after it.
    assert (
        v1
        == blend_warehouse.read(TableName.GOLD_SFT, snapshot_id=pinned.sources[0].snapshot_id)[
            "record_id"
        ].to_pylist()
    )
    # Sources with different columns: a row lacks the other's columns (null).
    assert rows[0].keys() >= {"id", "record_id", "messages", "_source"}


def test_the_same_pinned_blend_gives_the_same_bytes_and_another_seed_does_not(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    first = _stream_hash(iter_blend_batches(blend_warehouse, pinned, batch_rows=16))
    replay = PinnedBlend.model_validate_json(pinned.model_dump_json())
    blend_warehouse.append(NUMS, nums(1000, 5), Lineage("test"))  # a later commit: not read
    assert _stream_hash(iter_blend_batches(blend_warehouse, replay, batch_rows=16)) == first
    reseeded = replay.model_copy(update={"seed": 8})
    assert _stream_hash(iter_blend_batches(blend_warehouse, reseeded, batch_rows=16)) != first


def test_shares_follow_the_weights_while_every_source_has_rows() -> None:
    sources = [
        {"ref": f"t.s{i}", "table": f"t.s{i}", "snapshot_id": i, "rows": 10**9,
         "weight": w, "share": w / 10}
        for i, w in enumerate((6, 3, 1))
    ]  # fmt: skip
    pinned = PinnedBlend.model_validate({"sources": sources, "seed": 3})
    schedule = Schedule(pinned)
    counts = np.bincount(schedule.advance(schedule.initial(), 200_000), minlength=3)
    assert np.allclose(counts / 200_000, [0.6, 0.3, 0.1], atol=0.005)


def test_the_schedule_does_not_depend_on_how_it_is_cut_into_blocks(pinned: PinnedBlend) -> None:
    whole = Schedule(pinned)
    reference = whole.advance(whole.initial(), 10_000)
    pieces = Schedule(pinned)
    offsets = pieces.initial()
    cut = np.concatenate([pieces.advance(offsets, n) for n in (1, 7, 30, 64, 10_000)])
    assert cut.tolist() == reference.tolist()


@pytest.mark.parametrize(("world_size", "num_workers"), [(2, 3), (3, 2)])
def test_ranks_and_workers_together_read_every_row_once(
    blend_warehouse: Warehouse, pinned: PinnedBlend, world_size: int, num_workers: int
) -> None:
    everything = [_key(row) for row in iter_blend(blend_warehouse, pinned)]
    seen: list[tuple[str, str]] = []
    for rank in range(world_size):
        for worker in range(num_workers):
            shard = Shard(rank, world_size, worker, num_workers)
            for block in blocks(blend_warehouse, pinned, shard=shard, block_rows=5):
                seen.extend(_key(row) for row in block.batch.to_pylist())
    assert Counter(seen) == Counter(everything)
    assert len(seen) == len(everything)


def test_resuming_after_n_steps_yields_the_batches_of_an_uninterrupted_run(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    from torch.utils.data import DataLoader

    from posttrain.platform.blend import BlendDataset

    def dataset() -> BlendDataset:
        return BlendDataset(blend_warehouse.settings, pinned, rank=1, world_size=2, batch_rows=4)

    def collate(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [_key(row) for row in rows]

    uninterrupted = list(DataLoader(dataset(), batch_size=4, collate_fn=collate))
    first = dataset()
    loader = iter(DataLoader(first, batch_size=4, collate_fn=collate))
    steps = [next(loader) for _ in range(5)]
    state = first.state_dict()
    assert state == first.state_after(5 * 4)

    resumed = dataset()
    resumed.load_state_dict(state)
    rest = list(DataLoader(resumed, batch_size=4, collate_fn=collate))
    assert steps + rest == uninterrupted
    assert len(uninterrupted) > 5


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [_key(row) for row in rows]


def test_dataloader_workers_hand_out_the_rank_rows_in_stream_order(
    blend_warehouse: Warehouse, pinned: PinnedBlend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each DataLoader worker iterates its own copy with torch's worker info set; the
    # DataLoader then takes one batch (= one block) from each worker in turn. Spawning real
    # workers costs a torch import each; the split is the dataset's, so it is tested here.
    from types import SimpleNamespace

    from posttrain.platform.blend import BlendDataset
    from posttrain.platform.blend import dataset as dataset_module

    def rank(index: int) -> BlendDataset:
        return BlendDataset(
            blend_warehouse.settings, pinned, rank=index, world_size=2, batch_rows=4
        )

    per_worker = []
    for worker in range(2):
        info = SimpleNamespace(id=worker, num_workers=2)
        monkeypatch.setattr(dataset_module, "get_worker_info", lambda info=info: info)
        rows = _keys(list(rank(1)))
        per_worker.append([rows[i : i + 4] for i in range(0, len(rows), 4)])
    monkeypatch.undo()
    taken_in_turn = [
        key
        for pair in itertools.zip_longest(*per_worker, fillvalue=[])
        for batch in pair
        for key in batch
    ]
    assert taken_in_turn == _keys(list(rank(1)))
    everything = _keys(list(iter_blend(blend_warehouse, pinned)))
    assert Counter(taken_in_turn + _keys(list(rank(0)))) == Counter(everything)


def test_a_state_from_another_blend_or_out_of_range_is_refused(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    from posttrain.platform.blend import BlendDataset

    dataset = BlendDataset(blend_warehouse.settings, pinned)
    other = pin_blend(blend_warehouse, _spec(seed=1, nums=1))
    with pytest.raises(ConfigError, match="another blend"):
        dataset.load_state_dict(state_at(other, 3).model_dump())
    state = state_at(pinned, 3).model_dump()
    state["offsets"][NUMS] = 10**6
    with pytest.raises(ConfigError, match="outside"):
        dataset.load_state_dict(state)


def test_stop_ends_the_stream_at_the_first_draw_from_an_exhausted_source(
    blend_warehouse: Warehouse,
) -> None:
    stop = pin_blend(blend_warehouse, _spec(seed=2, exhausted="stop", nums=1, low=1))
    rows = list(iter_blend(blend_warehouse, stop))
    taken = Counter(row["_source"] for row in rows)
    assert taken[LOW] == 25 and taken[NUMS] < NUMS_ROWS
    assert rows[-1]["_source"] == LOW or taken[NUMS] < NUMS_ROWS
    # The stream ended where the schedule says: the next draw would be the empty source.
    assert state_at(stop, 10**6).position == len(rows)


def test_cycle_starts_an_exhausted_source_again_from_its_first_row(
    blend_warehouse: Warehouse,
) -> None:
    cycle = pin_blend(blend_warehouse, _spec(seed=2, exhausted="cycle", nums=1, low=3))
    stream = iter_blend(blend_warehouse, cycle)
    low = [row["id"] for row, _ in zip(stream, range(300), strict=False) if row["_source"] == LOW]
    assert len(low) > 3 * 25
    one_pass = _table_order(blend_warehouse, cycle, 1)
    assert sorted(one_pass) == list(range(25))
    assert low[:75] == one_pass * 3


def test_a_scan_read_from_any_row_equals_the_rows_from_there(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    # Three data files of row groups of 8 rows: skips land before, on and inside both.
    plan = ScanPlan(resolve(blend_warehouse, pinned.sources[1].pinned_ref), ("id",))
    every = _table_order(blend_warehouse, pinned, 1)
    assert len(every) == NUMS_ROWS
    for skip in (0, 1, 8, 13, 30, 31, 89, 90, 200):
        ids = [i for batch in plan.batches(skip_rows=skip) for i in batch["id"].to_pylist()]
        assert ids == every[skip:], skip


def test_numpy_rows_hold_the_same_values_as_python_rows(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    from posttrain.platform.blend.stream import rows_of

    packed = pa.record_batch(
        {"input_ids": pa.array([[1, 2, 3], [], [4]], pa.list_(pa.int32())), "n": [1, 2, 3]}
    ).slice(1)
    rows = rows_of(packed, "numpy")
    assert [row["input_ids"].tolist() for row in rows] == [[], [4]]
    assert [row["n"] for row in rows] == [2, 3]
    batch = next(iter_blend_batches(blend_warehouse, pinned, batch_rows=16))
    assert rows_of(batch, "numpy") == rows_of(batch, "python")


def test_replaying_a_blend_whose_snapshot_is_gone_fails_naming_the_source(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    sources = list(pinned.sources)
    sources[1] = sources[1].model_copy(update={"snapshot_id": 42})
    gone = pinned.model_copy(update={"sources": sources})
    with pytest.raises(SnapshotNotFoundError, match=r"t\.nums@42.*no longer has"):
        next(iter_blend(blend_warehouse, gone))


def test_a_manifest_from_another_schedule_is_refused(pinned: PinnedBlend) -> None:
    text = pinned.model_dump_json().replace("splitmix64-v1", "splitmix64-v0")
    with pytest.raises(ValidationError, match="another version of posttrain"):
        PinnedBlend.model_validate_json(text)


def _read_ahead_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "blend-read-ahead"]


@pytest.mark.timeout(60)
def test_a_stream_dropped_early_leaves_no_reader_thread_behind(
    blend_warehouse: Warehouse, pinned: PinnedBlend
) -> None:
    stream = iter_blend_batches(blend_warehouse, pinned, batch_rows=4)
    next(stream)
    assert isinstance(stream, Generator)
    stream.close()  # what a trainer stopping after a few steps does (or garbage collection)
    deadline = time.monotonic() + 5
    while _read_ahead_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _read_ahead_threads() == []


@pytest.mark.timeout(60)
def test_a_data_file_gone_after_pinning_fails_the_stream_instead_of_hanging(
    warehouse: Warehouse,
) -> None:
    warehouse.catalog.create_namespace("t")
    warehouse.catalog.create_table(NUMS, schema=NUMS_SCHEMA)
    for start in (0, 30):
        warehouse.append(NUMS, nums(start, 30), Lineage("test"))
    pinned = pin_blend(warehouse, BlendSpec(sources=[BlendSource(ref=NUMS)]))
    second = data_files(resolve(warehouse, NUMS))[1]
    Path(second.removeprefix("file://")).unlink()
    with pytest.raises(FileNotFoundError):
        list(iter_blend_batches(warehouse, pinned, batch_rows=8))


def test_a_shard_whose_blocks_lie_far_apart_reads_the_rows_of_the_whole_stream(
    blend_warehouse: Warehouse, pinned: PinnedBlend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every jump between blocks re-opens the scan (as ranks of a large world do) and the
    # readers stop reading ahead: the rows must not change.
    monkeypatch.setattr("posttrain.platform.blend.stream.SEEK_AHEAD_ROWS", 1)
    whole = list(blocks(blend_warehouse, pinned, block_rows=3))
    shard = Shard(rank=1, world_size=4)
    mine = [block.batch for block in blocks(blend_warehouse, pinned, shard=shard, block_rows=3)]
    assert mine == [block.batch for index, block in enumerate(whole) if shard.owns(index)]
    assert _read_ahead_threads() == []
