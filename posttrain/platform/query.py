"""SQL over the warehouse: every Iceberg table is a DuckDB view named ``namespace.table``.

Views read the current snapshot's Parquet data files directly, so a query touches only
the columns and row groups it needs instead of loading whole tables into memory. Tables
with delete files, or on storage DuckDB cannot read without extensions (S3 here), fall
back to a pyiceberg scan registered as an Arrow table.

Example:
    >>> con = connect(warehouse)  # doctest: +SKIP
    >>> con.sql("select reason, count(*) from silver.rejections group by 1")  # doctest: +SKIP
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from pyiceberg.table import Table

from posttrain.platform.errors import PosttrainError
from posttrain.platform.warehouse import Warehouse


class QueryError(PosttrainError):
    """A SQL query failed; the message is DuckDB's, with the tables that exist."""


def _local_files(table: Table) -> list[str] | None:
    tasks = list(table.scan().plan_files())
    if any(task.delete_files for task in tasks):
        return None
    paths = [task.file.file_path for task in tasks]
    if not all(path.startswith(("file://", "/")) for path in paths):
        return None
    return [path.removeprefix("file://") for path in paths]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def connect(warehouse: Warehouse, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per table (all tables unless ``tables`` is given)."""
    con = duckdb.connect()
    for name in tables or warehouse.table_names():
        namespace, short = name.split(".", 1)
        qualified = f"{_quote(namespace)}.{_quote(short)}"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(namespace)}")
        table = warehouse.table(name)
        files = _local_files(table)
        if files:
            file_list = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
            con.execute(f"CREATE VIEW {qualified} AS SELECT * FROM read_parquet([{file_list}])")
            continue
        data: pa.Table = (
            table.scan().to_arrow() if files is None else table.schema().as_arrow().empty_table()
        )
        staging = f"__posttrain_{namespace}_{short}"
        con.register(staging, data)
        con.execute(f"CREATE VIEW {qualified} AS SELECT * FROM {_quote(staging)}")
    return con


def run_query(warehouse: Warehouse, sql: str) -> pa.Table:
    """Run ``sql`` against all tables and return the result as Arrow."""
    con = connect(warehouse)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        known = ", ".join(warehouse.table_names()) or "none"
        raise QueryError(f"{exc}\n(tables: {known})") from exc
    finally:
        con.close()
