"""Executors map a step over Arrow batches and return results in input order."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from posttrain.platform.execution import InProcessExecutor, RayExecutor, ThreadExecutor, rebatch
from posttrain.platform.progress import ProgressUpdate


def _double(batch: pa.RecordBatch) -> list[int]:
    return [value * 2 for value in batch.column("x").to_pylist()]


def _batches(sizes: list[int]) -> list[pa.RecordBatch]:
    start, batches = 0, []
    for size in sizes:
        batches.append(pa.record_batch({"x": list(range(start, start + size))}))
        start += size
    return batches


class Recorder:
    def __init__(self) -> None:
        self.updates: list[ProgressUpdate] = []
        self.finished: ProgressUpdate | None = None

    def update(self, progress: ProgressUpdate) -> None:
        self.updates.append(progress)

    def finish(self, progress: ProgressUpdate) -> None:
        self.finished = progress


def test_rebatch_regroups_rows_without_losing_or_reordering() -> None:
    out = list(rebatch(iter(_batches([3, 7, 1, 5])), 4))
    assert [b.num_rows for b in out] == [4, 4, 4, 4]
    assert [v for b in out for v in b.column("x").to_pylist()] == list(range(16))


def test_in_process_executor_keeps_input_order_and_reports_progress() -> None:
    recorder = Recorder()
    results = list(
        InProcessExecutor(recorder).map_batches(
            _double, _batches([2, 3]), stage="double", total_rows=5
        )
    )
    assert results == [[0, 2], [4, 6, 8]]
    assert recorder.finished is not None and recorder.finished.rows_done == 5
    assert "double: 5/5 rows" in recorder.finished.describe()


@pytest.mark.slow
def test_ray_executor_returns_the_same_results_in_the_same_order(ray_runtime: None) -> None:
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    batches = _batches([5] * 20)
    expected = list(InProcessExecutor().map_batches(_double, batches, stage="double"))
    assert list(RayExecutor().map_batches(_double, batches, stage="double")) == expected


def _rayon_threads(batch: pa.RecordBatch) -> str | None:
    import os

    return os.environ.get("RAYON_NUM_THREADS")


@pytest.mark.slow
def test_a_ray_task_sizes_native_thread_pools_to_its_one_cpu(ray_runtime: None) -> None:
    import os
    import sys

    from ray import cloudpickle

    if "RAYON_NUM_THREADS" in os.environ:
        pytest.skip("RAYON_NUM_THREADS is set here: the workers inherit it and keep it")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    seen = RayExecutor().map_batches(_rayon_threads, _batches([1] * 4), stage="threads")
    assert set(seen) == {"1"}


def test_threads_return_results_in_input_order_whatever_finishes_first() -> None:
    def slow_first(batch: pa.RecordBatch) -> int:
        value = int(batch.column(0)[0].as_py())
        time.sleep(0.02 if value == 0 else 0.0)
        return value

    batches = [pa.record_batch({"x": [index]}) for index in range(12)]
    results = ThreadExecutor(3).map_batches(slow_first, batches, stage="order")
    assert list(results) == list(range(12))
