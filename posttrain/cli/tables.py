"""``posttrain tables``, ``posttrain show`` and ``posttrain query``: look at the warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table as RichTable

from posttrain.cli._app import (
    HomeOption,
    TokenOption,
    app,
    console,
    open_warehouse,
    reading_workspace,
    warehouse_settings,
)
from posttrain.platform.errors import ConfigError
from posttrain.platform.listing import TableInfo, embedded_table_infos

if TYPE_CHECKING:  # pyarrow, pyiceberg and DuckDB load in the commands that read rows
    import pyarrow as pa

    from posttrain.platform.warehouse import Warehouse

MAX_CELL = 120


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _print_arrow(data: pa.Table, title: str | None = None) -> None:
    view = RichTable(title=title, show_lines=False, header_style="bold")
    for name in data.column_names:
        view.add_column(name, overflow="fold")
    for row in data.to_pylist():
        view.add_row(*(_cell(row[name]) for name in data.column_names))
    console.print(view)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"


def tables_view(warehouse: Warehouse, title: str | None = None) -> RichTable:
    """Name, rows, current snapshot id, size and last update of every table."""
    return _infos_view((warehouse.info(name) for name in warehouse.table_names()), title)


def _infos_view(infos: Iterable[TableInfo], title: str | None = None) -> RichTable:
    view = RichTable(title=title, header_style="bold")
    for column in ("table", "rows", "snapshot", "size", "updated (UTC)"):
        view.add_column(
            column, justify="right" if column in ("rows", "size") else "left", no_wrap=True
        )
    for info in infos:
        view.add_row(
            info.name,
            f"{info.rows:,}",
            str(info.snapshot_id or "-"),
            _human_bytes(info.size_bytes),
            info.updated_at.strftime("%Y-%m-%d %H:%M:%S") if info.updated_at else "-",
        )
    return view


def _check_home_exists(home: Path | None) -> None:
    """A mistyped ``--home`` is an error, not a new empty warehouse."""
    if home is not None and not home.exists():
        raise ConfigError(f"--home {home}: no such folder, so no warehouse to read there")


def _open_existing(home: Path | None) -> Warehouse:
    """The warehouse to read (see :func:`_check_home_exists`)."""
    _check_home_exists(home)
    return open_warehouse(home)


@app.command()
def tables(home: HomeOption = None) -> None:
    """List every table: name, rows, current snapshot id, size on disk, last update."""
    _check_home_exists(home)
    # The embedded catalog is read directly: pyiceberg's import alone outlasts the command.
    infos = embedded_table_infos(warehouse_settings(home))
    view = _infos_view(infos) if infos is not None else tables_view(open_warehouse(home))
    if not view.row_count:
        console.print("No tables yet. Run `make demo`, or `posttrain ingest PATH`.")
        return
    console.print(view)


@app.command()
def show(
    table: Annotated[
        str,
        typer.Argument(
            help="Table name, e.g. silver.rejections, or TABLE@REF: a version (gold.sft@v3), "
            "snapshot id, tag or branch."
        ),
    ],
    limit: Annotated[int, typer.Option(help="Rows to show.", min=1)] = 10,
    where: Annotated[
        str | None,
        typer.Option(help="Row filter in Iceberg syntax, e.g. \"reason = 'near_dup'\"."),
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated columns to show (default: all).")
    ] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Print the first rows of a table (or of TABLE@REF), optionally filtered."""
    from posttrain.platform.query import head
    from posttrain.platform.versions import resolve

    warehouse = _open_existing(home)
    workspace = reading_workspace(token, home)
    selected = tuple(c.strip() for c in columns.split(",")) if columns else None
    name, snapshot_id = resolve(warehouse, table)
    if workspace is not None:
        if "workspace" not in warehouse.table(name).schema().column_names:
            raise ConfigError(
                f"{name} has no workspace column, so a workspace token cannot `show` it; "
                "use `posttrain query --token ...` (scoped views)"
            )
        mine = f"workspace = '{workspace}'"  # a checked name: letters, digits, - and _
        where = f"({where}) and {mine}" if where else mine
    if snapshot_id is None:
        console.print(f"{table} is empty.")
        return
    data = head(
        warehouse, name, columns=selected, where=where, limit=limit, snapshot_id=snapshot_id
    )
    _print_arrow(data, title=f"{table} ({data.num_rows} rows shown)")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL; tables are named like bronze.records.")],
    output: Annotated[
        str, typer.Option("--format", help="table, json (one object per line) or csv.")
    ] = "table",
    at: Annotated[
        list[str] | None,
        typer.Option(
            "--at",
            help="Read TABLE at REF (a version, snapshot id, tag or branch), e.g. "
            "--at gold.sft@v3; repeatable. Other tables read their current snapshot.",
        ),
    ] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Run SQL (DuckDB) over the Iceberg tables (with --token, only that workspace's rows).

    Example: posttrain query "select reason, count(*) n from silver.rejections group by 1"
    """
    from posttrain.platform.query import run_query
    from posttrain.platform.versions import resolve

    if output not in ("table", "json", "csv"):
        raise ConfigError(f"--format {output!r}: choose table, json or csv")
    warehouse = _open_existing(home)
    workspace = reading_workspace(token, home)
    pinned = dict(resolve(warehouse, spec) for spec in at or [])
    result = run_query(warehouse, sql, at=pinned, workspace=workspace)
    if output == "json":
        for row in result.to_pylist():
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
    elif output == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(result, sink)
        typer.echo(sink.getvalue().to_pybytes().decode(), nl=False)
    else:
        _print_arrow(result)
