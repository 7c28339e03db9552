"""``posttrain sources list`` / ``posttrain sources set``: each source's metadata, corrected
in one place (``lineage.sources``) without re-ingesting."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table as RichTable

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.errors import ConfigError
from posttrain.platform.ingest.source_metadata import (
    SourceMetadata,
    set_source_metadata,
    source_metadata,
)

sources_app = typer.Typer(
    name="sources",
    help=(
        "List or correct each source's workspace, license and description.\n\n"
        "They are recorded once per source at ingest; one [bold]sources set[/] fixes every "
        "record of the source for lineage and gold, without re-ingesting.\n\n"
        "[bold]Example:[/] posttrain sources set math-tutor --license CC-BY-SA-4.0"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(sources_app)


def _view(entries: list[SourceMetadata]) -> RichTable:
    view = RichTable(header_style="bold")
    for column in ("source", "workspace", "license", "description", "updated (UTC)"):
        view.add_column(column, overflow="fold")
    for entry in entries:
        view.add_row(
            entry.source,
            entry.workspace,
            entry.license,
            entry.description,
            entry.updated_at.strftime("%Y-%m-%d %H:%M:%S") if entry.updated_at else "-",
        )
    return view


@sources_app.command("list")
def list_sources(home: HomeOption = None) -> None:
    """Every ingested source with its current workspace, license and description."""
    entries = source_metadata(open_warehouse(home))
    if not entries:
        console.print("No sources yet: `posttrain ingest` records them.")
        return
    console.print(_view([entries[name] for name in sorted(entries)]))


@sources_app.command("set")
def set_source(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The source to correct.")],
    license_: Annotated[
        str | None, typer.Option("--license", help="New license, e.g. CC-BY-4.0.")
    ] = None,
    workspace: Annotated[str | None, typer.Option(help="New workspace.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    home: HomeOption = None,
) -> None:
    """Correct a source's metadata; options not given keep their value.

    Example: posttrain sources set math-tutor --license CC-BY-SA-4.0 --workspace public
    """
    if license_ is None and workspace is None and description is None:
        raise ConfigError("give at least one of --license, --workspace, --description")
    entry = set_source_metadata(
        open_warehouse(home),
        name,
        workspace=workspace,
        license=license_,
        description=description,
    )
    console.print(_view([entry]))
