"""Direct reads of a pinned snapshot's local Parquet data files.

``posttrain show`` (:func:`posttrain.platform.query.head`) and the viewer's pages
(:mod:`posttrain.platform.browse`) read a few rows at an offset without pyiceberg's scan,
which opens every file and decodes whole row groups. A snapshot never changes and a data
file is never rewritten in place, so a snapshot's plan (its files and their row counts, from
the manifests) and each file's footer (rows per row group) are cached: finding the row
group that holds row 9,000,000 is arithmetic on cached counts, and only that row group is
decoded, up to the rows asked for. Tables with delete files, or on storage pyarrow cannot
open by path, get ``None`` here and are read through pyiceberg.

Example:
    >>> files = snapshot_files(table, snapshot_id)  # doctest: +SKIP
    >>> rows_at(files, table.schema().as_arrow(), offset=9_000_000, count=25)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import FileScanTask, Table

__all__ = [
    "LOCAL",
    "READ_BUFFER_BYTES",
    "DataFile",
    "candidate_row_groups",
    "conform",
    "footer",
    "local_paths",
    "matching_row_groups",
    "matching_rows_at",
    "open_parquet",
    "rows_at",
    "snapshot_files",
]

# Reads go without pre-buffering: pyarrow then reads a column chunk a buffer at a time
# instead of whole row groups at once (one row group can hold a whole 300k-row ingest).
READ_BUFFER_BYTES = 1 << 20
# Rows decoded at a time while passing over the rows of a row group before an offset.
_SKIP_BATCH_ROWS = 65_536
_PARQUET = ds.ParquetFileFormat()
# Row groups read at once while counting a filter's matches, and the column naming them.
_COUNT_GROUPS = 16
_OWNER = "__posttrain_row_group"
# Rows read at once while counting a filter on one string column (4 bytes each: indices).
_DICTIONARY_COUNT_ROWS = 1 << 20
# Dictionaries remembered (with which of their values match) while counting one file.
_DICTIONARIES_KEPT = 4
# Local data files are opened with this filesystem (never guessed from the path).
LOCAL = pafs.LocalFileSystem()


@dataclass(frozen=True)
class DataFile:
    """One local data file of a snapshot and its row count (from the manifest)."""

    path: str
    rows: int


def local_paths(tasks: list[FileScanTask]) -> list[str] | None:
    """The local data files of ``tasks``, or ``None`` when pyiceberg must read them."""
    paths = [task.file.file_path for task in tasks]
    if any(task.delete_files for task in tasks) or not all(
        path.startswith(("file://", "/")) for path in paths
    ):
        return None
    return [path.removeprefix("file://") for path in paths]


def snapshot_files(
    table: Table, snapshot_id: int, expression: BooleanExpression | None = None
) -> tuple[DataFile, ...] | None:
    """The data files of snapshot ``snapshot_id`` whose statistics do not rule
    ``expression`` out, in table order; ``None`` when pyiceberg must read them (delete
    files, remote storage). Cached per snapshot and filter: a snapshot never changes."""
    expression = expression if expression is not None else AlwaysTrue()
    key = (str(table.metadata.table_uuid), snapshot_id, repr(expression))
    with _PLANS_LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    tasks = list(table.scan(row_filter=expression, snapshot_id=snapshot_id).plan_files())
    paths = local_paths(tasks)
    files = (
        None
        if paths is None
        else tuple(DataFile(p, t.file.record_count) for p, t in zip(paths, tasks, strict=True))
    )
    with _PLANS_LOCK:
        _PLANS[key] = files
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return files


# Plans by (table uuid, snapshot id, filter text); only the file lists are kept, so the
# cache holds no table metadata.
_PLANS: OrderedDict[tuple[str, int, str], tuple[DataFile, ...] | None] = OrderedDict()
_PLANS_LOCK = threading.Lock()
_MAX_PLANS = 256


@functools.lru_cache(maxsize=1024)
def footer(path: str) -> pq.FileMetaData:
    """The Parquet footer of a local data file (cached: Iceberg never rewrites a file)."""
    return pq.read_metadata(path)


def open_parquet(path: str) -> pq.ParquetFile:
    """A local data file opened for reading a few pages at a time, with its cached footer."""
    return pq.ParquetFile(
        path, metadata=footer(path), buffer_size=READ_BUFFER_BYTES, pre_buffer=False
    )


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """``batch`` with exactly ``schema``'s columns: files written before a column was added
    lack it (null), and a file's string type may be the large variant."""
    return pa.Table.from_arrays(conformed_columns(batch, schema), schema=schema)


def conformed_columns(
    batch: pa.RecordBatch | pa.Table, schema: pa.Schema
) -> list[pa.Array | pa.ChunkedArray]:
    """The columns of :func:`conform`, for a caller that builds a record batch of them."""
    return [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else pa.nulls(batch.num_rows, field.type)
        for field in schema
    ]


def file_batches(
    path: str, schema: pa.Schema, predicate: pc.Expression | None, batch_rows: int
) -> Iterator[pa.Table]:
    """The rows of one data file with exactly ``schema``'s columns that match ``predicate``
    (all rows when ``None``), ``batch_rows`` at a time, from the row groups whose
    statistics do not rule ``predicate`` out.

    ``iter_batches`` without pre-buffering decodes pages as it goes: memory stays a few
    pages, whatever the size of the file or row group.
    """
    row_groups = matching_row_groups(path, predicate) if predicate is not None else None
    if row_groups == []:
        return
    parquet = open_parquet(path)
    present = set(parquet.schema_arrow.names)
    for batch in parquet.iter_batches(
        batch_size=batch_rows,
        row_groups=row_groups,
        columns=[name for name in schema.names if name in present],
        use_threads=False,
    ):
        rows = conform(batch, schema)
        yield rows if predicate is None else rows.filter(predicate)


def matching_row_groups(path: str, predicate: pc.Expression) -> list[int] | None:
    """The row groups of a local file whose statistics do not rule ``predicate`` out
    (``None``: all of them)."""
    try:
        fragment = _PARQUET.make_fragment(path, filesystem=LOCAL)
        return [row_group.id for row_group in fragment.subset(predicate).row_groups]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None  # e.g. the filter names a column this older file lacks


def candidate_row_groups(
    files: Sequence[DataFile], predicate: pc.Expression | None
) -> list[tuple[str, int, int]]:
    """(path, row group, rows) of each row group of ``files`` in table order whose
    statistics do not rule ``predicate`` out (all of them for ``None``)."""
    found: list[tuple[str, int, int]] = []
    for file in files:
        metadata = footer(file.path)
        groups = None if predicate is None else matching_row_groups(file.path, predicate)
        for group in range(metadata.num_row_groups) if groups is None else groups:
            found.append((file.path, group, metadata.row_group(group).num_rows))
    return found


def rows_at(files: Sequence[DataFile], schema: pa.Schema, offset: int, count: int) -> pa.Table:
    """Rows ``offset`` to ``offset + count`` of ``files`` read in order (fewer at the end),
    with ``schema``'s columns. Files and row groups before ``offset`` are passed over by
    their counts; only the row groups that hold the rows are decoded, and only up to them."""
    pieces: list[pa.Table] = []
    for file in files:
        if count <= 0:
            break
        if offset >= file.rows:
            offset -= file.rows
            continue
        piece = _file_rows(file.path, schema, offset, count)
        pieces.append(piece)
        count -= piece.num_rows
        offset = 0
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def _file_rows(path: str, schema: pa.Schema, offset: int, count: int) -> pa.Table:
    metadata = footer(path)
    groups: list[int] = []
    covered = 0  # rows of ``groups`` from ``offset`` on
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if not groups and offset >= rows:
            offset -= rows
            continue
        groups.append(index)
        covered += rows - (offset if len(groups) == 1 else 0)
        if covered >= count:
            break
    if not groups:
        return schema.empty_table()
    parquet = open_parquet(path)
    present = set(parquet.schema_arrow.names)
    batches = parquet.iter_batches(
        # One batch when the rows before the page are few; large ones (sliced away in C++,
        # not in a Python loop of small ones) when the row group is big.
        batch_size=max(1, min(_SKIP_BATCH_ROWS, offset + count)),
        row_groups=groups,
        columns=[name for name in schema.names if name in present],
        use_threads=False,
    )
    pieces: list[pa.Table] = []
    for batch in batches:
        if offset >= batch.num_rows:
            offset -= batch.num_rows
            continue
        kept = batch.slice(offset, count)
        offset = 0
        pieces.append(conform(kept, schema))
        count -= kept.num_rows
        if count <= 0:
            break
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def matching_rows_at(
    files: Sequence[DataFile],
    schema: pa.Schema,
    predicate: pc.Expression,
    filter_schema: pa.Schema,
    offset: int,
    count: int,
) -> pa.Table:
    """Matches ``offset`` to ``offset + count`` of ``predicate`` in ``files`` read in order,
    with ``schema``'s columns. Matches before the offset are counted per row group on the
    filter's columns only (``filter_schema``; counts cached per file and filter), so only
    the row groups that hold the page are decoded whole."""
    # The filter's columns are read with the shown ones, then dropped.
    read = pa.schema([*schema, *(f for f in filter_schema if f.name not in schema.names)])
    pieces: list[pa.Table] = []
    for file in files:
        if count <= 0:
            break
        counts = _match_counts(file.path, filter_schema, predicate)
        for group, matches in enumerate(counts):
            if count <= 0:
                break
            if offset >= matches:
                offset -= matches
                continue
            parquet = open_parquet(file.path)
            present = set(parquet.schema_arrow.names)
            rows = parquet.read_row_group(
                group, columns=[name for name in read.names if name in present], use_threads=False
            )
            kept = conform(rows, read).filter(predicate).slice(offset, count).select(schema.names)
            pieces.append(kept)
            count -= kept.num_rows
            offset = 0
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def _match_counts(path: str, filter_schema: pa.Schema, predicate: pc.Expression) -> tuple[int, ...]:
    return _cached_match_counts(path, str(predicate), _Predicate(filter_schema, predicate))


class _Predicate:
    """Carries a filter through the match-count cache, keyed by its text."""

    def __init__(self, schema: pa.Schema, predicate: pc.Expression) -> None:
        self.schema = schema
        self.predicate = predicate

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Predicate)


@functools.lru_cache(maxsize=4096)
def _cached_match_counts(path: str, predicate_text: str, carried: _Predicate) -> tuple[int, ...]:
    """Matches per row group of one file (0 for a group its statistics rule out)."""
    metadata = footer(path)
    candidates = matching_row_groups(path, carried.predicate)
    groups = range(metadata.num_row_groups) if candidates is None else candidates
    counts = [0] * metadata.num_row_groups
    parquet = open_parquet(path)
    present = set(parquet.schema_arrow.names)
    columns = [name for name in carried.schema.names if name in present]
    groups = list(groups)
    field = carried.schema.field(0) if len(carried.schema) == 1 else None
    if (
        field is not None
        and field.name in present
        and _is_string(field.type)
        and _few_values(metadata, groups, field.name)
    ):
        return _dictionary_match_counts(path, field, carried.predicate, groups)
    # A few row groups per read: fewer calls than one per group, memory still bounded.
    for start in range(0, len(groups), _COUNT_GROUPS):
        chunk = groups[start : start + _COUNT_GROUPS]
        rows = conform(parquet.read_row_groups(chunk, columns=columns), carried.schema)
        sizes = [metadata.row_group(group).num_rows for group in chunk]
        owner = pa.array(np.repeat(np.arange(len(chunk)), sizes))
        kept = rows.append_column(_OWNER, owner).filter(carried.predicate)
        found = np.bincount(kept[_OWNER].to_numpy(), minlength=len(chunk))
        for group, number in zip(chunk, found.tolist(), strict=True):
            counts[group] = number
    return tuple(counts)


def _is_string(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def _few_values(metadata: pq.FileMetaData, groups: list[int], name: str) -> bool:
    """Whether the column ``name`` holds few distinct values, judged on the first of
    ``groups``: Parquet wrote it with a dictionary page of under 1/8 byte per row (a column
    of many distinct values, e.g. an id, is counted faster as plain strings)."""
    if not groups:
        return False
    row_group = metadata.row_group(groups[0])
    for index in range(row_group.num_columns):
        chunk = row_group.column(index)
        if chunk.path_in_schema != name:
            continue
        if not chunk.has_dictionary_page or chunk.dictionary_page_offset is None:
            return False
        dictionary_bytes = chunk.data_page_offset - chunk.dictionary_page_offset
        return bool(0 < dictionary_bytes * 8 < row_group.num_rows)
    return False


def _dictionary_match_counts(
    path: str, field: pa.Field, predicate: pc.Expression, groups: list[int]
) -> tuple[int, ...]:
    """Matches per row group of a filter on one string column, as Parquet stores it: the
    filter is evaluated on each dictionary's few values (and on null), and a row matches
    when its index points at a matching value. No string is built per row."""
    metadata = footer(path)
    counts = [0] * metadata.num_row_groups
    parquet = pq.ParquetFile(
        path,
        metadata=metadata,
        buffer_size=READ_BUFFER_BYTES,
        pre_buffer=False,
        read_dictionary=[field.name],
    )
    # Row groups mostly share their dictionary: each one seen lately is evaluated once.
    hits: deque[tuple[pa.Array, np.ndarray]] = deque(maxlen=_DICTIONARIES_KEPT)
    for chunk in row_group_runs(metadata, groups, _DICTIONARY_COUNT_ROWS, _rows):
        column = parquet.read_row_groups(chunk, columns=[field.name], use_threads=False).column(0)
        masks = [_dictionary_mask(array, field, predicate, hits) for array in column.chunks]
        mask = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
        start = 0
        for group in chunk:
            end = start + metadata.row_group(group).num_rows
            # count_nonzero on a slice: far faster than a reduceat over a widened copy.
            counts[group] = int(np.count_nonzero(mask[start:end]))
            start = end
    return tuple(counts)


def _rows(group: pq.RowGroupMetaData) -> int:
    return int(group.num_rows)


def row_group_runs(
    metadata: pq.FileMetaData,
    groups: list[int],
    limit: int,
    weight: Callable[[pq.RowGroupMetaData], int],
) -> Iterator[list[int]]:
    """``groups`` in consecutive runs, each closed once the ``weight`` of its row groups
    (rows, bytes...) reaches ``limit``: at least one group each, and a run overshoots
    ``limit`` by less than its last group.

    Example:
        >>> rows = lambda group: group.num_rows  # doctest: +SKIP
        >>> list(row_group_runs(metadata, [0, 1, 2], 200, rows))  # doctest: +SKIP
        [[0, 1], [2]]
    """
    run: list[int] = []
    held = 0
    for group in groups:
        run.append(group)
        held += weight(metadata.row_group(group))
        if held >= limit:
            yield run
            run, held = [], 0
    if run:
        yield run


def _dictionary_mask(
    array: pa.Array,
    field: pa.Field,
    predicate: pc.Expression,
    hits: deque[tuple[pa.Array, np.ndarray]],
) -> np.ndarray:
    """Which rows of ``array`` (dictionary-encoded, or plain when Parquet fell back to
    plain encoding) match ``predicate``."""
    if not pa.types.is_dictionary(array.type):
        values = pa.table({field.name: array.cast(field.type)})
        marked = values.append_column(_OWNER, pa.array(np.arange(len(array))))
        mask = np.zeros(len(array), dtype=bool)
        mask[marked.filter(predicate)[_OWNER].to_numpy()] = True
        return mask
    dictionary = array.dictionary.cast(field.type)
    hit = next((known for seen, known in hits if seen.equals(dictionary)), None)
    if hit is None:
        # The dictionary's values, then null (the index a null row is given below).
        values = pa.concat_arrays([dictionary, pa.nulls(1, field.type)])
        marked = pa.table({field.name: values, _OWNER: pa.array(np.arange(len(values)))})
        hit = np.zeros(len(values), dtype=bool)
        hit[marked.filter(predicate)[_OWNER].to_numpy()] = True
        hits.appendleft((dictionary, hit))
    indices = array.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(dictionary))
    indices = indices.to_numpy(zero_copy_only=False)
    result: np.ndarray = hit[indices]
    return result
