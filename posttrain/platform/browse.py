"""Pages of a table for a person to read: filter, search, offset, histograms.

The viewer's reads. Every page is a pinned scan (``TABLE@REF`` resolved once through
:func:`posttrain.platform.refs.resolve`): the Iceberg filter (``posttrain show``'s grammar,
:func:`posttrain.platform.query.parse_row_filter`) prunes data files when the scan is
planned, then row groups by their statistics, and only the row groups that hold the page
are decoded. Without a filter or search, the page is located by the row counts of the
snapshot's files and row groups (:func:`posttrain.platform.datafiles.rows_at`, cached per
snapshot) and only the row group that holds it is decoded, so page 400,000 of a
10-million-row table costs what page 1 costs. A filtered page is found the same way by
the matches per row group, counted on the filter's columns only and cached per file and
filter (:func:`posttrain.platform.datafiles.matching_rows_at`). A full-text search or a
malformed-content flag cannot be counted so: it reads batch by batch from the start and
stops once the page is full, so its cost grows with the offset. A histogram counts every
row its filter may select up to :data:`HISTOGRAM_EXACT_ROWS`; beyond, an evenly spaced
sample of row groups, and says so (:attr:`Histogram.sample`).

Example:
    >>> page = read_page(warehouse, "gold.sft@v1", where="source = 'math-tutor'", limit=20)
    >>> page.rows[0]["record_id"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In, Reference
from pyiceberg.expressions.literals import literal
from pyiceberg.expressions.visitors import bind, extract_field_ids
from pyiceberg.io.pyarrow import expression_to_pyarrow

from posttrain.platform import datafiles
from posttrain.platform.errors import QueryError
from posttrain.platform.query import parse_row_filter as parse_row_filter
from posttrain.platform.refs import PinnedSnapshot, resolve
from posttrain.platform.schemas import TABLES
from posttrain.platform.warehouse import Warehouse

T = TypeVar("T")

MAX_LIMIT = 200
_BATCH_ROWS = 256


@dataclass(frozen=True)
class Page:
    """Rows ``offset`` .. ``offset + len(rows)`` of a filtered, pinned table."""

    table: str
    ref: str | None
    snapshot_id: int | None
    rows: list[dict[str, Any]]
    offset: int
    limit: int
    has_more: bool
    # Rows in the snapshot when no filter or search applies (from its summary), else None.
    total: int | None
    columns: list[str] = field(default_factory=list)


def key_columns(name: str) -> tuple[str, ...]:
    """The columns that identify a row of ``name`` (empty for a table without a spec)."""
    spec = TABLES.get(name)
    return spec.key if spec is not None else ()


def restrict(pinned: PinnedSnapshot, workspaces: frozenset[str] | None) -> BooleanExpression | None:
    """The filter that keeps only ``workspaces``' rows, for a principal limited to them
    (``None``: unrestricted, or the table has no ``workspace`` column)."""
    if workspaces is None:
        return None
    if "workspace" not in pinned.table.schema().column_names:
        return None
    return In(term=Reference("workspace"), values={literal(w) for w in sorted(workspaces)})


def key_filter(pinned: PinnedSnapshot, values: dict[str, str]) -> BooleanExpression:
    """``key = value`` for each key column, typed as the column is."""
    schema = pinned.table.schema()
    expression: BooleanExpression = AlwaysTrue()
    for column, text in values.items():
        if column not in schema.column_names:
            raise QueryError(f"{pinned.name} has no column {column!r}")
        arrow_type = schema.find_field(column).field_type
        value: Any = int(text) if str(arrow_type) in ("int", "long") else text
        expression = And(expression, EqualTo(term=Reference(column), value=literal(value)))
    return expression


def _search_mask(batch: pa.Table, needle: str) -> pa.Array:
    """Rows of ``batch`` where any string column, or any message's content or tool call,
    contains ``needle`` (case-insensitive)."""
    mask = np.zeros(batch.num_rows, dtype=bool)
    for column in batch.columns:
        array = column.combine_chunks()
        texts, parents = _texts(array)
        if texts is None:
            continue
        hit = pc.fill_null(pc.match_substring(texts, needle, ignore_case=True), False)
        hits = hit.to_numpy(zero_copy_only=False)
        if parents is None:
            mask |= hits
        elif hits.any():
            mask[np.unique(parents[hits])] = True
    return pa.array(mask)


def _texts(array: pa.Array) -> tuple[pa.Array | None, Any]:
    """Searchable text of a column: the strings, or for a message list each message's
    content and tool-call arguments with the row each belongs to."""
    type_ = array.type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return array, None
    if (pa.types.is_list(type_) or pa.types.is_large_list(type_)) and pa.types.is_struct(
        type_.value_type
    ):
        struct = type_.value_type
        if struct.get_field_index("content") < 0:
            return None, None
        flat = pc.list_flatten(array)
        parents = pc.list_parent_indices(array).to_numpy()
        texts = pc.fill_null(flat.field("content"), "").cast(pa.large_string())
        space = pa.scalar(" ", pa.large_string())
        if struct.get_field_index("tool_calls") >= 0:
            calls = flat.field("tool_calls")
            if pc.sum(pc.fill_null(pc.list_value_length(calls), 0)).as_py():
                functions = pc.list_flatten(calls).field("function")
                args = pc.binary_join_element_wise(
                    pc.fill_null(functions.field("name"), "").cast(pa.large_string()),
                    pc.fill_null(functions.field("arguments"), "").cast(pa.large_string()),
                    space,
                )
                offsets = calls.offsets
                per_message = pc.fill_null(
                    pc.binary_join(
                        pa.LargeListArray.from_arrays(offsets.cast(pa.int64()), args)
                        if isinstance(calls, pa.LargeListArray)
                        else pa.ListArray.from_arrays(offsets, args),
                        space,
                    ),
                    "",
                ).cast(pa.large_string())
                texts = pc.binary_join_element_wise(texts, per_message, space)
        return texts, parents
    return None, None


def _matching(
    pinned: PinnedSnapshot,
    expression: BooleanExpression,
    search: str | None,
    columns: list[str],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[pa.Table]:
    """Matching rows of the pinned snapshot in table order, as tables."""
    table = pinned.table
    files = datafiles.snapshot_files(table, pinned.snapshot_id, expression)
    if files is None:  # delete files, or storage pyarrow cannot open by path
        scan = table.scan(
            row_filter=expression, selected_fields=tuple(columns), snapshot_id=pinned.snapshot_id
        )
        for batch in scan.to_arrow_batch_reader():
            data = pa.Table.from_batches([batch])
            data = data.filter(_search_mask(data, search)) if search else data
            yield _kept(data, keep)
        return
    schema = table.schema()
    bound = bind(schema, expression, case_sensitive=True)
    predicate = None if isinstance(bound, AlwaysTrue) else expression_to_pyarrow(bound)
    read = set(columns)
    if predicate is not None:  # the filter's columns are read even when not shown
        read |= {schema.find_column_name(i) or "" for i in extract_field_ids(bound)}
    read_schema = pa.schema([f for f in schema.as_arrow() if f.name in read])
    shown = [name for name in read_schema.names if name in set(columns)]
    for file in files:
        for rows in datafiles.file_batches(file.path, read_schema, predicate, _BATCH_ROWS):
            if search and rows.num_rows:
                rows = rows.filter(_search_mask(rows, search))
            yield _kept(rows.select(shown), keep)


def _kept(rows: pa.Table, keep: Callable[[dict[str, Any]], bool] | None) -> pa.Table:
    """The rows a Python predicate keeps (e.g. rows with a malformed-content flag)."""
    if keep is None or not rows.num_rows:
        return rows
    return rows.filter(pa.array([keep(row) for row in rows.to_pylist()], pa.bool_()))


def read_page(
    warehouse: Warehouse,
    spec: str,
    *,
    where: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 25,
    columns: list[str] | None = None,
    extra: BooleanExpression | None = None,
) -> Page:
    """Rows ``offset`` to ``offset + limit`` of ``spec`` (``TABLE[@REF]``) matching ``where``
    (Iceberg filter syntax) and containing ``search`` anywhere in their text.

    ``extra`` is ANDed to the filter (a key, or a principal's workspaces).

    Raises:
        TableNotFoundError, SnapshotNotFoundError: no such table or ref.
        QueryError: the filter does not parse or names an unknown column.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    offset = max(0, offset)
    pinned = resolve(warehouse, spec)
    return page_of(
        pinned, where=where, search=search, offset=offset, limit=limit, columns=columns, extra=extra
    )


def page_of(
    pinned: PinnedSnapshot,
    *,
    where: str | None = None,
    search: str | None = None,
    offset: int = 0,
    limit: int = 25,
    columns: list[str] | None = None,
    extra: BooleanExpression | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:
    """:func:`read_page` on an already pinned snapshot; ``keep`` further selects rows by a
    Python predicate on the whole row (read batch by batch, never the whole table)."""
    table = pinned.table
    expression = parse_row_filter(table, where, "filter")
    if extra is not None:
        expression = And(expression, extra)
    known = table.schema().column_names
    wanted = [c for c in (columns or known) if c in known] or known
    if keep is not None:
        wanted = known
    search = search.strip() if search else None
    filtered = bool((where and where.strip()) or search or extra is not None or keep is not None)
    read_schema = pa.schema([f for f in table.schema().as_arrow() if f.name in wanted])
    located = not search and keep is None  # the page can be found by counts
    files = datafiles.snapshot_files(table, pinned.snapshot_id, expression) if located else None
    bound = bind(table.schema(), expression, case_sensitive=True)
    if files is not None and isinstance(bound, AlwaysTrue):
        # Unfiltered: the page's rows are found by the row counts of files and row groups.
        rows = datafiles.rows_at(files, read_schema, offset, limit + 1).to_pylist()
    elif files is not None:
        # Filtered: matches before the page are counted on the filter's columns only.
        filter_columns = {table.schema().find_column_name(i) for i in extract_field_ids(bound)}
        filter_schema = pa.schema(
            [f for f in table.schema().as_arrow() if f.name in filter_columns]
        )
        rows = datafiles.matching_rows_at(
            files, read_schema, expression_to_pyarrow(bound), filter_schema, offset, limit + 1
        ).to_pylist()
    else:
        need, pieces, got = offset + limit + 1, [], 0
        for data in _matching(pinned, expression, search, wanted, keep):
            pieces.append(data)
            got += data.num_rows
            if got >= need:
                break
        combined = pa.concat_tables(pieces) if pieces else None
        rows = combined.slice(offset, limit + 1).to_pylist() if combined is not None else []
    return Page(
        table=pinned.name,
        ref=pinned.ref,
        snapshot_id=pinned.snapshot_id,
        rows=rows[:limit],
        offset=offset,
        limit=limit,
        has_more=len(rows) > limit,
        total=None if filtered else pinned.rows,
        columns=wanted,
    )


# -- histograms ------------------------------------------------------------------------

# Columns a histogram may be asked for: real columns, plus two derived from message lists.
DERIVED = {"length": "characters of all message content", "turns": "messages per row"}
CATEGORICAL_HINTS = (
    "source",
    "reason",
    "sft_status",
    "verifier_kind",
    "origin",
    "license",
    "workspace",
    "format",
    "reward_source",
    "checkpoint",
    "kind",
)
NUMERIC_HINTS = (
    "num_chars",
    "num_turns",
    "reward",
    "margin",
    "similarity",
    "num_tokens",
    "value",
    "matched_ngrams",
)


# A histogram reads every row its filter may select up to this many (exact counts); beyond,
# a sample of evenly spaced row groups holding about HISTOGRAM_SAMPLE_ROWS rows (an
# estimate, labelled as one). Its cost then stays flat in table size.
HISTOGRAM_EXACT_ROWS = 1_000_000
HISTOGRAM_SAMPLE_ROWS = 500_000


@dataclass(frozen=True)
class Sample:
    """The rows a sampled histogram counted: ``row_groups`` Parquet row groups evenly
    spaced in table order out of the ``of_row_groups`` its filter's statistics do not rule
    out, holding ``rows`` of their ``of_rows`` rows."""

    rows: int
    of_rows: int
    row_groups: int
    of_row_groups: int

    def estimate(self, count: int) -> int:
        """``count`` matches in the sample scaled to the rows it was drawn from."""
        return round(count * self.of_rows / max(1, self.rows))


@dataclass(frozen=True)
class Histogram:
    """Counts of one column over the filtered rows: bins (numeric) or top values."""

    column: str
    kind: str  # numeric or categorical
    # (label, count, filter that selects the bin, or None when it cannot be pushed down)
    bins: list[tuple[str, int, str | None]]
    rows: int
    # None: every row counted (exact). Else counts and ``rows`` are the sample's.
    sample: Sample | None = None


def histogram_columns(pinned: PinnedSnapshot) -> list[str]:
    """The columns of this table worth a histogram, most useful first."""
    names = pinned.table.schema().column_names
    found = [c for c in (*NUMERIC_HINTS, *CATEGORICAL_HINTS) if c in names]
    messages = next((c for c in ("messages", "prompt", "chosen") if c in names), None)
    if messages is not None:
        if "num_chars" not in names:
            found.insert(0, "length")
        if "num_turns" not in names:
            found.insert(0, "turns")
    return found


def _message_column(names: list[str]) -> str | None:
    return next((c for c in ("messages", "chosen", "prompt") if c in names), None)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@functools.lru_cache(maxsize=256)
def _histogram_cached(
    warehouse_key: str,
    table_uuid: str,
    snapshot_id: int,
    column: str,
    where: str,
    workspaces: tuple[str, ...] | None,
    pinned_holder: Unkeyed[PinnedSnapshot],
) -> Histogram:
    return _compute_histogram(
        pinned_holder.value,
        column,
        where or None,
        None if workspaces is None else frozenset(workspaces),
    )


class Unkeyed(Generic[T]):
    """Carries a value through an ``lru_cache`` without taking part in its key: every
    ``Unkeyed`` hashes and compares equal, so the other arguments alone (say, a table and
    snapshot id) decide a hit, and ``value`` (say, the pinned snapshot) is used on a miss."""

    def __init__(self, value: T) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unkeyed)


def histogram(
    pinned: PinnedSnapshot,
    column: str,
    where: str | None = None,
    workspaces: frozenset[str] | None = None,
) -> Histogram:
    """The histogram of ``column`` (or ``length``/``turns``) over the rows ``where``
    selects. A snapshot never changes, so results are cached by snapshot id."""
    return _histogram_cached(
        "",
        str(pinned.table.metadata.table_uuid),
        pinned.snapshot_id,
        column,
        where or "",
        None if workspaces is None else tuple(sorted(workspaces)),
        Unkeyed(pinned),
    )


def _compute_histogram(
    pinned: PinnedSnapshot, column: str, where: str | None, workspaces: frozenset[str] | None
) -> Histogram:
    table = pinned.table
    names = table.schema().column_names
    expression = parse_row_filter(table, where, "filter")
    extra = restrict(pinned, workspaces)
    if extra is not None:
        expression = And(expression, extra)
    source = _message_column(names) if column in DERIVED else column
    if source is None or source not in names:
        raise QueryError(f"{pinned.name} has no column {column!r} for a histogram")
    values_parts: list[pa.Array] = []
    batches, sample = _column_batches(pinned, expression, source, dictionary=column not in DERIVED)
    for batch in batches:
        array = batch.column(0)
        if column == "turns":
            array = pc.list_value_length(array)
        elif column == "length":
            flat = pc.list_flatten(array)
            lengths = pc.fill_null(pc.utf8_length(flat.field("content")), 0)
            parents = pc.list_parent_indices(array).to_numpy()
            sums = np.bincount(parents, weights=lengths.to_numpy(), minlength=len(array))
            array = pa.array(sums.astype(np.int64))
        values_parts.append(array)
    values = (
        pa.chunked_array(values_parts).combine_chunks()
        if values_parts
        else pa.array([], pa.string())
    )
    rows = len(values)
    type_ = values.type
    pushable = column not in DERIVED
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        numeric = _numeric(column, values, rows, pushable, pa.types.is_integer(type_))
        return dataclasses.replace(numeric, sample=sample)
    counts = pc.value_counts(
        values if pa.types.is_dictionary(type_) else values.cast(pa.string())
    ).to_pylist()
    counts.sort(key=lambda item: (-item["counts"], str(item["values"])))
    bins: list[tuple[str, int, str | None]] = []
    for item in counts[:20]:
        value = item["values"]
        label = "(null)" if value is None else str(value)
        expr = f"{column} is null" if value is None else f"{column} = {_quote(str(value))}"
        bins.append((label, int(item["counts"]), expr if pushable else None))
    return Histogram(column, "categorical", bins, rows, sample)


def _column_batches(
    pinned: PinnedSnapshot, expression: BooleanExpression, column: str, *, dictionary: bool
) -> tuple[Iterator[pa.RecordBatch], Sample | None]:
    """``column`` of the rows ``expression`` selects: from the snapshot's local files with
    pyarrow's threaded scanner, which skips row groups by their statistics and reads the
    filter's columns besides this one only (pyiceberg's scan when it cannot). With
    ``dictionary``, a string column comes dictionary-encoded as Parquet stores it (counting
    its values then skips building a string per row). When the row groups the filter's
    statistics leave hold more than :data:`HISTOGRAM_EXACT_ROWS` rows, only an evenly
    spaced sample of them is read, and the :class:`Sample` says which."""
    table = pinned.table
    files = datafiles.snapshot_files(table, pinned.snapshot_id, expression)
    if files is None:
        scan = table.scan(
            row_filter=expression, selected_fields=(column,), snapshot_id=pinned.snapshot_id
        )
        return iter(scan.to_arrow_batch_reader()), None
    bound = bind(table.schema(), expression, case_sensitive=True)
    predicate = None if isinstance(bound, AlwaysTrue) else expression_to_pyarrow(bound)
    schema = table.schema().as_arrow()
    field = schema.field(column)
    if dictionary and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        schema = schema.set(
            schema.get_field_index(column),
            field.with_type(pa.dictionary(pa.int32(), field.type)),
        )
        read = ds.ParquetReadOptions(dictionary_columns=[column])
        format_ = ds.ParquetFileFormat(read_options=read)
    else:
        format_ = ds.ParquetFileFormat()
    sample = None
    if sum(file.rows for file in files) <= HISTOGRAM_EXACT_ROWS:
        dataset = ds.dataset([file.path for file in files], schema=schema, format=format_)
    else:
        groups = datafiles.candidate_row_groups(files, predicate)
        total = sum(rows for _, _, rows in groups)
        picked = groups
        if total > HISTOGRAM_EXACT_ROWS:
            # Evenly spaced in table order: a table appended in batches (a source, a day
            # each) is drawn from all of them, and the same request reads the same rows.
            wanted = max(1, HISTOGRAM_SAMPLE_ROWS * len(groups) // total)
            picked = [groups[(2 * i + 1) * len(groups) // (2 * wanted)] for i in range(wanted)]
            sample = Sample(
                rows=sum(rows for _, _, rows in picked),
                of_rows=total,
                row_groups=len(picked),
                of_row_groups=len(groups),
            )
        by_file: dict[str, list[int]] = {}
        for path, group, _ in picked:
            by_file.setdefault(path, []).append(group)
        fragments = [
            format_.make_fragment(path, filesystem=datafiles.LOCAL, row_groups=ids)
            for path, ids in by_file.items()
        ]
        dataset = ds.FileSystemDataset(fragments, schema, format_, datafiles.LOCAL)
    return iter(dataset.to_batches(columns=[column], filter=predicate)), sample


def _numeric(column: str, values: pa.Array, rows: int, pushable: bool, integer: bool) -> Histogram:
    data = values.drop_null().to_numpy(zero_copy_only=False).astype(float)
    nulls = rows - len(data)
    bins: list[tuple[str, int, str | None]] = []
    if len(data):
        low, high = float(data.min()), float(data.max())
        count = 1 if low == high else min(12, max(1, int(high - low) + 1) if integer else 12)
        edges = np.linspace(low, high, count + 1) if count > 1 else np.array([low, high])
        if integer:
            edges = np.unique(np.round(edges))
            if len(edges) == 1:
                edges = np.array([edges[0], edges[0] + 1])
        counts, edges = np.histogram(data, bins=edges)
        for index, number in enumerate(counts):
            lo, hi = edges[index], edges[index + 1]
            last = index == len(counts) - 1
            label = _label(lo, integer) + ("" if lo == hi else "–" + _label(hi, integer))
            upper = "<=" if last else "<"
            expr = f"{column} >= {_exact(lo, integer)} and {column} {upper} {_exact(hi, integer)}"
            bins.append((label, int(number), expr if pushable else None))
    if nulls:
        bins.append(("(null)", nulls, f"{column} is null" if pushable else None))
    return Histogram(column, "numeric", bins, rows)


def _label(value: float, integer: bool) -> str:
    return str(int(value)) if integer else f"{value:.3g}"


def _exact(value: float, integer: bool) -> str:
    # Filters must select exactly the bin: full precision, and no exponent (the filter
    # grammar reads plain decimals).
    return str(int(value)) if integer else np.format_float_positional(value, trim="-")
