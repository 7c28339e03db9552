"""Read-only, sandboxed SQL over the warehouse: each Iceberg table is a view ``namespace.table``.

The DuckDB connection sees the posttrain tables and nothing else. Each table is handed to
DuckDB as a pyarrow dataset over the data files of its current snapshot (pinned when the
connection opens), so DuckDB itself never opens a file: external access is off, the
configuration is locked, extensions neither install nor load, and only ``SELECT``
statements run. DuckDB still pushes projections and filters into the dataset scan, so a
query reads only the columns and row groups it needs. Tables with delete files, or on
storage pyarrow cannot open by path (S3 here), fall back to a pyiceberg scan held as an
Arrow table.

:func:`head` serves ``posttrain show``: the first rows matching an Iceberg filter, read with
the limit, projection and filter pushed into the scan, so memory stays flat in table size.

Example:
    >>> sql = "select reason, count(*) from silver.rejections group by 1"
    >>> run_query(warehouse, sql)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.expressions.parser import parse as parse_filter
from pyiceberg.expressions.visitors import bind, extract_field_ids
from pyiceberg.io.pyarrow import expression_to_pyarrow
from pyiceberg.table import Table

from posttrain.platform.datafiles import (
    file_batches,
    local_paths,
)
from posttrain.platform.errors import QueryError, QueryRefusedError
from posttrain.platform.warehouse import Warehouse

__all__ = [
    "QueryError",
    "QueryRefusedError",
    "check_read_only",
    "connect",
    "head",
    "parse_row_filter",
    "run_query",
    "table_data",
    "workspace_data",
]

# Set when the connection is created; ``lock_configuration`` then forbids any ``SET`` that
# would undo them.
SANDBOX: dict[str, str | bool] = {
    "enable_external_access": False,  # no files, URLs or databases beyond what we register
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # the caller's Python variables stay invisible
}

_PARQUET = ds.ParquetFileFormat()
_HEAD_BATCH_ROWS = 256


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def table_data(table: Table, snapshot_id: int | None = None) -> ds.Dataset | pa.Table:
    """The rows of one snapshot (the current one by default) for DuckDB to scan.

    A lazy dataset over the snapshot's local data files when it has no delete files;
    otherwise pyiceberg's scan, read into memory, which applies the deletes.
    """
    scan = table.scan(snapshot_id=snapshot_id)
    schema = scan.projection().as_arrow()
    paths = local_paths(list(scan.plan_files()))
    if paths is None:
        return scan.to_arrow()
    return ds.dataset(paths, schema=schema, format=_PARQUET)


# Tables every workspace may read whole: public benchmark items (the eval.* namespace).
PUBLIC_NAMESPACES = ("eval",)


def workspace_data(
    warehouse: Warehouse,
    name: str,
    workspace: str,
    *,
    at: Mapping[str, int | None] | None = None,
) -> pa.Table | None:
    """The rows of ``name`` that belong to ``workspace``, or ``None`` when the table cannot
    be scoped to one (it is then hidden from the workspace).

    A table with a ``workspace`` column keeps that workspace's rows; one with only a
    ``record_id`` keeps the rows of the workspace's ``bronze.records``; ``eval.*`` is public.
    """
    from pyiceberg.expressions import EqualTo, In, Reference
    from pyiceberg.expressions.literals import literal

    loaded = warehouse.table(name)
    columns = loaded.schema().column_names
    snapshot = at.get(name) if at is not None and name in at else _current(loaded)
    if name.split(".", 1)[0] in PUBLIC_NAMESPACES:
        scoped: BooleanExpression = AlwaysTrue()
    elif "workspace" in columns:
        scoped = EqualTo(term=Reference("workspace"), value=literal(workspace))
    elif "record_id" in columns:
        ids = workspace_record_ids(warehouse, workspace, at=at)
        if not ids:
            return loaded.schema().as_arrow().empty_table()
        scoped = In(term=Reference("record_id"), values={literal(i) for i in ids})
    else:
        return None
    if snapshot is None:
        return loaded.schema().as_arrow().empty_table()
    return loaded.scan(row_filter=scoped, snapshot_id=snapshot).to_arrow()


def _current(table: Table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def workspace_record_ids(
    warehouse: Warehouse, workspace: str, *, at: Mapping[str, int | None] | None = None
) -> set[str]:
    """The ``record_id`` of every ``bronze.records`` row of ``workspace``."""
    from pyiceberg.expressions import EqualTo, Reference
    from pyiceberg.expressions.literals import literal

    from posttrain.platform.schemas import TableName

    bronze = TableName.BRONZE_RECORDS
    if not warehouse.exists(bronze):
        return set()
    loaded = warehouse.table(bronze)
    snapshot = at.get(bronze) if at is not None and bronze in at else _current(loaded)
    if snapshot is None:
        return set()
    ids = loaded.scan(
        row_filter=EqualTo(term=Reference("workspace"), value=literal(workspace)),
        selected_fields=("record_id",),
        snapshot_id=snapshot,
    ).to_arrow()["record_id"]
    return set(ids.to_pylist())


def connect(
    warehouse: Warehouse,
    tables: Iterable[str] | None = None,
    *,
    at: Mapping[str, int | None] | None = None,
    workspace: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A sandboxed DuckDB connection with a view per table (all tables unless ``tables``).

    Each view reads the snapshot that was current when the connection opened, or the one
    ``at`` pins for it (``posttrain query --at gold.sft@v3``; ``None``: empty). With
    ``workspace``, each view holds only that workspace's rows (:func:`workspace_data`) and
    tables that cannot be scoped are not registered at all: the connection never holds
    another workspace's rows, so no SQL can reach them.
    """
    con = duckdb.connect(config=dict(SANDBOX))
    names = list(tables) if tables is not None else warehouse.table_names()
    for name in names:
        namespace, short = name.split(".", 1)
        staging = f"__posttrain_{namespace}_{short}"
        loaded = warehouse.table(name)
        if workspace is not None:
            scoped = workspace_data(warehouse, name, workspace, at=at)
            if scoped is None:
                continue
            data: ds.Dataset | pa.Table = scoped
        elif at is not None and name in at and at[name] is None:
            data = loaded.schema().as_arrow().empty_table()
        else:
            data = table_data(loaded, at.get(name) if at is not None else None)
        con.register(staging, data)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
        con.execute(
            f"CREATE VIEW {_quote(namespace)}.{_quote(short)} AS SELECT * FROM {_quote(staging)}"
        )
    con.execute("SET lock_configuration = true")
    return con


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's first message line, plus the line and column its caret points at."""
    lines = str(exc).splitlines()
    message = lines[0] if lines else type(exc).__name__
    for index, line in enumerate(lines):
        found = re.match(r"LINE (\d+): ", line)
        if found and index + 1 < len(lines) and "^" in lines[index + 1]:
            if line[len(found.group(0)) :].startswith("..."):  # a long line, shown cut
                return f"{message} (line {found.group(1)})"
            column = lines[index + 1].index("^") - len(found.group(0)) + 1
            return f"{message} (line {found.group(1)}, column {column})"
    return message


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` unless it is exactly one ``SELECT`` (incl. ``FROM``, ``DESCRIBE``, ...).

    Raises:
        QueryRefusedError: e.g. ``posttrain query is read-only: COPY statements are refused``.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    if not statements:
        raise QueryRefusedError("no SQL statement given")
    refused = [s.type.name for s in statements if s.type != duckdb.StatementType.SELECT]
    if refused:
        raise QueryRefusedError(
            f"posttrain query is read-only: {refused[0]} statements are refused (only SELECT runs)"
        )
    if len(statements) > 1:
        raise QueryRefusedError(
            f"posttrain query runs one SELECT at a time; got {len(statements)} statements"
        )


def run_query(
    warehouse: Warehouse,
    sql: str,
    *,
    at: Mapping[str, int | None] | None = None,
    workspace: str | None = None,
) -> pa.Table:
    """Run one read-only ``SELECT`` against all tables and return the result as Arrow.

    ``at`` pins some tables to a snapshot (see :func:`posttrain.platform.versions.resolve`);
    ``workspace`` scopes every table to that workspace's rows (see :func:`connect`).

    Raises:
        QueryRefusedError: the SQL is not a single ``SELECT``.
        QueryError: DuckDB refused or failed the query; one line, with the tables there are.
    """
    con = connect(warehouse, tables=[])
    try:
        # Checked before the tables are registered: a refused statement costs no planning.
        check_read_only(con, sql)
    finally:
        con.close()
    con = connect(warehouse, at=at, workspace=workspace)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        known = ", ".join(_view_names(con)) or "none"
        raise QueryError(f"{_one_line(exc)} (tables: {known})") from None
    finally:
        con.close()


def _view_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select schema_name || '.' || view_name from duckdb_views() where not internal"
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def parse_row_filter(table: Table, text: str | None, option: str = "--where") -> BooleanExpression:
    """``text`` in pyiceberg's filter syntax, bound to ``table``'s columns (all rows if empty).

    Raises:
        QueryError: naming ``option``, the column where parsing stopped and the text there,
            or the unknown column / mistyped literal and the columns there are.
    """
    if text is None or not text.strip():
        return AlwaysTrue()
    try:
        expression = parse_filter(text)
    except Exception as exc:  # pyparsing's ParseException carries the position
        # pyparsing's own message lists the whole grammar; the position and text say more.
        column = int(getattr(exc, "col", 1))
        rest = text[column - 1 :].strip()
        near = f"at {rest!r}" if rest else "the end of the filter"
        raise QueryError(
            f"{option} {text!r}: cannot parse at column {column} ({near}); expected e.g. "
            '"reason = \'near_dup\'", "num_turns > 2 and detail is not null", '
            "\"source in ('a', 'b')\""
        ) from None
    try:
        bind(table.schema(), expression, case_sensitive=True)
    except (ValueError, TypeError) as exc:  # unknown column; literal of the wrong type
        known = ", ".join(field.name for field in table.schema().fields)
        raise QueryError(f"{option} {text!r}: {exc} (columns: {known})") from None
    return expression


def _filter(table: Table, where: str | None) -> BooleanExpression:
    return parse_row_filter(table, where, "--where")


def _head_of_files(
    paths: list[str], schema: pa.Schema, predicate: pc.Expression | None, limit: int
) -> pa.Table:
    """The first ``limit`` rows of ``paths`` that match ``predicate``, read a page at a time.

    ``ParquetFile.iter_batches`` without pre-buffering decodes pages as it goes, so memory
    is a few pages plus one dictionary page, whatever the size of the file or row group
    (the dataset scanner reads whole column chunks ahead).
    """
    pieces: list[pa.Table] = []
    remaining = limit
    for path in paths:
        if remaining == 0:
            break
        for rows in file_batches(path, schema, predicate, _HEAD_BATCH_ROWS):
            pieces.append(rows.slice(0, remaining))
            remaining -= pieces[-1].num_rows
            if remaining == 0:
                break
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def head(
    warehouse: Warehouse,
    name: str,
    *,
    columns: tuple[str, ...] | None = None,
    where: str | None = None,
    limit: int = 10,
    snapshot_id: int | None = None,
) -> pa.Table:
    """The first ``limit`` rows of ``name`` matching ``where`` (pyiceberg filter syntax),
    in ``snapshot_id`` (default: the current snapshot).

    Only the files and row groups whose statistics can match are opened, only the selected
    and filtered columns are read, and reading stops at ``limit`` rows, so memory does not
    grow with the table.

    Raises:
        TableNotFoundError: no such table.
        QueryError: an unknown column, or a filter that does not parse or bind.
    """
    table = warehouse.table(name)
    schema = table.schema()
    known = [field.name for field in schema.fields]
    unknown = [column for column in columns or () if column not in known]
    if unknown:
        raise QueryError(
            f"--columns: no column {unknown[0]!r} in {name}; columns: {', '.join(known)}"
        )
    expression = _filter(table, where)
    selected = list(columns) if columns else known
    # Planning with the filter skips the files whose statistics rule it out.
    scan = table.scan(
        row_filter=expression,
        selected_fields=tuple(selected),
        limit=limit,
        snapshot_id=snapshot_id,
    )
    tasks = list(scan.plan_files())
    paths = local_paths(tasks)
    if paths is None:
        return scan.to_arrow()
    bound = bind(schema, expression, case_sensitive=True)
    filtered = not isinstance(bound, AlwaysTrue)
    read = set(selected)
    if filtered:
        read |= {schema.find_column_name(field_id) or "" for field_id in extract_field_ids(bound)}
    arrow_schema = schema.as_arrow()
    read_schema = pa.schema([field for field in arrow_schema if field.name in read])
    rows = _head_of_files(
        paths, read_schema, expression_to_pyarrow(bound) if filtered else None, limit
    )
    return rows.select(selected)


def parse_where(table: Table, where: str | None) -> BooleanExpression:
    """``where`` (pyiceberg filter syntax, as ``posttrain show --where``) bound-checked
    against ``table``; everything when empty.

    Raises:
        QueryError: the filter does not parse, or names an unknown column.
    """
    return _filter(table, where)
