"""Load a pinned table snapshot as a Hugging Face ``datasets`` dataset, straight from Iceberg.

    >>> from posttrain.platform.loader import load
    >>> sft = load("gold.sft@4242", columns=["messages"])  # doctest: +SKIP
    >>> packed = load("gold.sft_packed", streaming=True)  # doctest: +SKIP

``streaming=True`` returns an ``IterableDataset`` that reads the snapshot's Parquet files
one bounded batch at a time (:func:`~posttrain.platform.refs.stream_batches`), so memory
stays flat whatever the table's size; ``.with_format("arrow").iter(batch_size=...)`` hands
out Arrow tables at nearly the speed of pyarrow itself (``bench/loader.py``). Each data file
is a shard, so DataLoader workers and ``split_dataset_by_node`` divide the files.

``streaming=False`` returns a ``Dataset`` backed by a memory-mapped Arrow file that is
streamed out of Iceberg once and cached under the datasets cache, keyed by the table's uuid,
snapshot id and columns: a snapshot never changes, so the cache never goes stale, and a
second ``load`` of the same snapshot opens the file without reading Iceberg again.

``datasets`` comes with the ``train`` extra (``pip install 'posttrain[train]'``, installed
by ``make install``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from posttrain.platform.errors import MissingDependencyError
from posttrain.platform.refs import (
    PinnedSnapshot,
    TableRef,
    arrow_schema,
    data_files,
    resolve,
    stream_batches,
)
from posttrain.platform.settings import WarehouseSettings, load_settings
from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset

DATASETS_REQUIREMENT = "datasets>=5.2"


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("posttrain.platform.loader", DATASETS_REQUIREMENT) from None
    return datasets


@dataclass(frozen=True)
class _Source:
    """What a streaming dataset reads on each pass. Picklable, so DataLoader workers can
    carry it: a copy re-opens the warehouse from its settings, while the original reuses
    the table it was resolved from."""

    settings: WarehouseSettings
    table: str
    snapshot_id: int
    columns: tuple[str, ...] | None
    pinned: PinnedSnapshot | None = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "pinned": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def batches(self, files: list[str]) -> Iterator[pa.RecordBatch]:
        pinned = self.pinned or resolve(
            Warehouse(self.settings), TableRef(self.table, str(self.snapshot_id))
        )
        yield from stream_batches(pinned, self.columns, files)


def _generate_tables(source: _Source, files: list[str]) -> Iterator[tuple[str, pa.Table]]:
    # ``datasets`` hands each DataLoader worker (or ``shard``) a slice of ``files``.
    for index, batch in enumerate(source.batches(files)):
        yield f"{source.table}@{source.snapshot_id}:{index}", pa.Table.from_batches([batch])


def load(
    table_ref: TableRef | str,
    columns: Sequence[str] | None = None,
    *,
    streaming: bool = False,
    warehouse: Warehouse | None = None,
    cache_dir: Path | None = None,
) -> Dataset | IterableDataset:
    """A ``datasets.Dataset`` (or ``IterableDataset`` when ``streaming``) of one snapshot.

    Args:
        table_ref: ``TABLE``, ``TABLE@SNAPSHOT_ID`` or ``TABLE@TAG``; the current snapshot
            when unpinned, frozen at call time (later commits are not seen).
        columns: the columns to read (all by default), e.g. ``["messages"]`` for TRL.
        streaming: stream row groups from Iceberg instead of building a cached Arrow file.
        warehouse: the warehouse to read; the configured one (``posttrain.yaml`` /
            ``POSTTRAIN_*``) by default.
        cache_dir: where the non-streaming Arrow files go (default: the datasets cache).

    Rows come in table order, each exactly once.

    Raises:
        MissingDependencyError: ``datasets`` is not installed.
        TableNotFoundError, SnapshotNotFoundError, ConfigError: bad reference or column.
    """
    datasets = _datasets()
    warehouse = warehouse or Warehouse(load_settings().warehouse)
    pinned = resolve(warehouse, table_ref)
    selected = tuple(columns) if columns else None
    schema = arrow_schema(pinned, selected)
    features = datasets.Features.from_arrow_schema(schema)
    if streaming:
        from datasets.iterable_dataset import ArrowExamplesIterable

        source = _Source(warehouse.settings, pinned.name, pinned.snapshot_id, selected, pinned)
        examples = ArrowExamplesIterable(
            _generate_tables, kwargs={"source": source, "files": data_files(pinned)}
        )
        return datasets.IterableDataset(examples, info=datasets.DatasetInfo(features=features))
    path = _cached_arrow_file(pinned, selected, schema, cache_dir)
    return datasets.Dataset.from_file(str(path))


def _cached_arrow_file(
    pinned: PinnedSnapshot,
    columns: tuple[str, ...] | None,
    schema: pa.Schema,
    cache_dir: Path | None,
) -> Path:
    if cache_dir is None:
        cache_dir = Path(_datasets().config.HF_DATASETS_CACHE) / "posttrain"
    key = hashlib.sha256(
        f"{pinned.table.metadata.table_uuid}|{pinned.snapshot_id}|{columns}".encode()
    ).hexdigest()[:24]
    path = cache_dir / f"{pinned.name}-{pinned.snapshot_id}-{key}.arrow"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    # ``datasets`` memory-maps Arrow IPC *stream* files; written to a temp name and renamed,
    # so a crash or a concurrent load never leaves a half file under the final name.
    handle, partial = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
    os.close(handle)
    try:
        with pa.OSFile(partial, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in stream_batches(pinned, columns):
                writer.write_batch(batch)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return path
