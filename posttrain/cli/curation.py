"""``posttrain branch ...``, ``posttrain publish`` and ``posttrain forget``: curate a table on
a branch and publish it, or erase records everywhere."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.errors import ConfigError

branch_app = typer.Typer(
    name="branch",
    help=(
        "Curate a table on a branch (write–audit–publish).\n\n"
        "[bold]branch create[/] cuts a branch from main; [bold]drop[/], [bold]fix[/] and "
        "[bold]relabel[/] edit it; readers of main see nothing until "
        "[bold]posttrain publish TABLE BRANCH[/], which runs the table's checks on the branch "
        "and fast-forwards main only if they pass and main has not moved.\n\n"
        "[bold]Example:[/] posttrain branch create gold.sft review-x && "
        "posttrain branch drop gold.sft review-x --where \"source = 'spam'\""
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(branch_app)

CuratorOption = Annotated[
    str | None, typer.Option(help="Who edits (default: your login name).", show_default=False)
]


@branch_app.command("create")
def branch_create(
    table: Annotated[str, typer.Argument(help="Table, e.g. gold.sft")],
    name: Annotated[str, typer.Argument(help="Branch name, e.g. review-x")],
    curator: CuratorOption = None,
    home: HomeOption = None,
) -> None:
    """Cut a branch of TABLE at main's current snapshot."""
    from posttrain.platform.curation import create_branch

    info = create_branch(open_warehouse(home), table, name, curator=curator)
    console.print(f"created {info.describe()}", highlight=False)


@branch_app.command("list")
def branch_list(
    table: Annotated[str | None, typer.Argument(help="Table (default: every table)")] = None,
    home: HomeOption = None,
) -> None:
    """List the curation branches: head, base snapshot, curator, edits."""
    from posttrain.platform.curation import list_branches

    found = list_branches(open_warehouse(home), table)
    if not found:
        console.print("no branches", highlight=False)
    for info in found:
        console.print(info.describe(), highlight=False)


@branch_app.command("drop")
def branch_drop(
    table: Annotated[str, typer.Argument(help="Table")],
    name: Annotated[str, typer.Argument(help="Branch")],
    where: Annotated[str, typer.Option(help="Rows to drop, e.g. \"source = 'spam'\".")],
    curator: CuratorOption = None,
    home: HomeOption = None,
) -> None:
    """Drop the rows of TABLE@NAME matching --where."""
    from posttrain.platform.curation import drop_rows

    result = drop_rows(open_warehouse(home), table, name, where, curator=curator)
    console.print(result.describe(), highlight=False)


@branch_app.command("fix")
def branch_fix(
    table: Annotated[str, typer.Argument(help="Table")],
    name: Annotated[str, typer.Argument(help="Branch")],
    record: Annotated[str, typer.Argument(help="Key of the row to fix (its record_id).")],
    set_: Annotated[
        str | None,
        typer.Option(
            "--set", help='JSON object of column → new value, e.g. \'{"license": "MIT"}\'.'
        ),
    ] = None,
    patch_file: Annotated[
        Path | None, typer.Option("--file", help="The same JSON object, in a file.")
    ] = None,
    curator: CuratorOption = None,
    home: HomeOption = None,
) -> None:
    """Replace columns of one record; the fix's snapshot names the original and the curator."""
    from posttrain.platform.curation import fix_record, parse_patch

    if (set_ is None) == (patch_file is None):
        raise ConfigError("give the new values with exactly one of --set JSON or --file PATH")
    text = set_ if set_ is not None else Path(patch_file or "").read_text(encoding="utf-8")
    result = fix_record(
        open_warehouse(home), table, name, record, parse_patch(text), curator=curator
    )
    console.print(result.describe(), highlight=False)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@branch_app.command("relabel")
def branch_relabel(
    table: Annotated[str, typer.Argument(help="Table")],
    name: Annotated[str, typer.Argument(help="Branch")],
    where: Annotated[str, typer.Option(help="Rows to relabel (pyiceberg filter).")],
    column: Annotated[str, typer.Option(help="Column to set.")],
    value: Annotated[str, typer.Option(help="New value (JSON, or plain text).")],
    curator: CuratorOption = None,
    home: HomeOption = None,
) -> None:
    """Set --column to --value on the rows of TABLE@NAME matching --where."""
    from posttrain.platform.curation import relabel

    result = relabel(
        open_warehouse(home), table, name, where, column, _value(value), curator=curator
    )
    console.print(result.describe(), highlight=False)


@branch_app.command("remove")
def branch_remove(
    table: Annotated[str, typer.Argument(help="Table")],
    name: Annotated[str, typer.Argument(help="Branch")],
    home: HomeOption = None,
) -> None:
    """Remove a branch without publishing it."""
    from posttrain.platform.curation import drop_branch

    drop_branch(open_warehouse(home), table, name)
    console.print(f"removed {table}@{name}", highlight=False)


@app.command()
def publish(
    table: Annotated[str, typer.Argument(help="Table")],
    name: Annotated[str, typer.Argument(help="Branch to publish")],
    home: HomeOption = None,
) -> None:
    """Fast-forward main of TABLE to branch NAME if its checks pass and main has not moved."""
    from posttrain.platform.curation import publish as publish_branch

    result = publish_branch(open_warehouse(home), table, name)
    for check, outcome in result.checks:
        console.print(f"  passed {check}: {outcome.description}", highlight=False)
    console.print(result.describe(), highlight=False)


@app.command()
def forget(
    record_id: Annotated[
        list[str] | None, typer.Option("--record-id", help="A record to erase (repeatable).")
    ] = None,
    source_uri: Annotated[
        str | None, typer.Option(help="Erase every record read from this file.")
    ] = None,
    where: Annotated[
        str | None, typer.Option(help="Erase the bronze records matching this filter.")
    ] = None,
    retention_hours: Annotated[
        float,
        typer.Option(min=0, help="Keep replaced snapshots this long before expiring them."),
    ] = 0.0,
    expire_only: Annotated[
        bool,
        typer.Option("--expire", help="Only expire snapshots past the retention, in every table."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Erase records from every layer, branch, version and file of the warehouse.

    Bronze is rewritten too (the one allowed rewrite, recorded in
    lineage.erasures); versions holding the records are recut; replaced
    snapshots are expired after --retention-hours and the files only they
    reached are deleted.
    """
    from posttrain.platform.erasure import expire
    from posttrain.platform.erasure import forget as erase

    warehouse = open_warehouse(home)
    retention = timedelta(hours=retention_hours)
    if expire_only:
        expired, kept, files, size = expire(warehouse, warehouse.table_names(), retention)
        console.print(
            f"{expired} snapshot(s) expired, {kept} kept for the retention, {files} file(s) "
            f"deleted ({size:,} bytes)",
            highlight=False,
        )
        return
    if not (record_id or source_uri or where):
        raise ConfigError("say what to forget: --record-id ID, --source-uri URI or --where EXPR")
    report = erase(
        warehouse,
        record_ids=record_id or (),
        source_uri=source_uri,
        where=where,
        retention=retention,
    )
    console.print(report.describe(), highlight=False)
