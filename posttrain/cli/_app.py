"""The typer application every command module registers on, and shared CLI plumbing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from posttrain.platform.warehouse import Warehouse, WarehouseSettings

app = typer.Typer(
    name="posttrain",
    help=(
        "posttrain: build SFT, DPO and RL corpora as versioned Iceberg tables.\n\n"
        "Tables live in the warehouse under $POSTTRAIN_HOME (default: .posttrain/ in the "
        "project). Materialize the whole pipeline with `make demo` or from the Dagster UI "
        "(`make ui`); these commands ingest, inspect and query it."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Warehouse home (catalog.db + warehouse/). Default: $POSTTRAIN_HOME or .posttrain/",
        envvar="POSTTRAIN_HOME",
        show_default=False,
    ),
]


def open_warehouse(home: Path | None) -> Warehouse:
    """The embedded warehouse under ``home`` (or the default home)."""
    return Warehouse(WarehouseSettings.local(home))
