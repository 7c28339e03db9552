"""The output does not depend on batch size, row order, executor or number of workers."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from posttrain.platform.dedup import DedupConfig, DedupResult, PublishedIndex, deduplicate
from posttrain.platform.dedup.evaluation import pair_documents
from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor, ThreadExecutor


def _ipc_bytes(result: DedupResult) -> bytes:
    sink = io.BytesIO()
    for table in (result.assignments, result.fingerprints, result.rejected):
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


@pytest.fixture(scope="module")
def corpus(labelled_pairs: pa.Table) -> tuple[pa.Table, PublishedIndex]:
    """~1,200 real documents with duplicates among them, and ~300 published ones."""
    documents = pair_documents(labelled_pairs.slice(0, 750))
    published = deduplicate(
        documents.slice(0, 300), DedupConfig(), InProcessExecutor(), text_column="text"
    )
    index = PublishedIndex.from_table(published.kept_fingerprints(), DedupConfig())
    return documents.slice(300), index


def _run(
    corpus: tuple[pa.Table, PublishedIndex],
    executor: Executor,
    batch_rows: int,
    reverse: bool = False,
) -> bytes:
    table, published = corpus
    if reverse:
        table = table.take(pa.array(range(table.num_rows - 1, -1, -1)))
    result = deduplicate(
        table, DedupConfig(), executor, published, text_column="text", batch_rows=batch_rows
    )
    assert result.stats.exact_duplicates + result.stats.near_duplicates > 100  # real work
    return _ipc_bytes(result)


def test_batch_size_and_row_order_do_not_change_a_byte(
    corpus: tuple[pa.Table, PublishedIndex],
) -> None:
    reference = _run(corpus, InProcessExecutor(), 4096)
    assert _run(corpus, InProcessExecutor(), 37, reverse=True) == reference
    assert _run(corpus, InProcessExecutor(), 250) == reference


@pytest.mark.slow
def test_ray_with_one_or_two_workers_gives_the_in_process_bytes(
    corpus: tuple[pa.Table, PublishedIndex], ray_runtime: None
) -> None:
    reference = _run(corpus, InProcessExecutor(), 4096)
    assert _run(corpus, RayExecutor(max_in_flight=1), 300) == reference
    assert _run(corpus, RayExecutor(), 64, reverse=True) == reference


def test_threads_give_the_in_process_bytes(corpus: tuple[pa.Table, PublishedIndex]) -> None:
    reference = _run(corpus, InProcessExecutor(), 4096)
    assert _run(corpus, ThreadExecutor(2), 64) == reference
    assert _run(corpus, ThreadExecutor(3), 250, reverse=True) == reference
