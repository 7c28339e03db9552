"""Batches sent to Ray carry their own bytes only, not the buffers they were sliced from."""

from __future__ import annotations

import pickle

import pyarrow as pa

from posttrain.platform.execution import _compact, iter_batches


def test_a_slice_is_compacted_before_it_is_pickled_for_a_worker() -> None:
    table = pa.table({"text": ["x" * 1000] * 1000, "n": list(range(1000))})
    batch = list(iter_batches(table, batch_rows=10))[5]
    assert len(pickle.dumps(batch)) > 500_000  # pickling a slice writes the whole column
    compact = _compact(batch)
    assert compact.equals(batch)
    assert len(pickle.dumps(compact)) < 20_000


def test_a_batch_that_owns_its_buffers_is_sent_as_is() -> None:
    batch = pa.record_batch({"n": list(range(100))})
    assert _compact(batch) is batch
