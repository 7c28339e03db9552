"""``posttrain export``: write a pinned table snapshot as files a trainer loads as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console, open_warehouse


@app.command()
def export(
    table: Annotated[
        str,
        typer.Argument(
            help="TABLE, TABLE@SNAPSHOT_ID or TABLE@TAG, e.g. gold.sft@4242 (default: the "
            "current snapshot)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Folder to write (new or empty; never inside the warehouse)."),
    ],
    output_format: Annotated[
        str, typer.Option("--format", help="parquet or jsonl (one JSON object per line).")
    ] = "parquet",
    force: Annotated[
        bool, typer.Option(help="Replace the previous export in --out (its files only).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Export one snapshot of a table for TRL or Axolotl, with a manifest (snapshot id, rows,
    schema, sha256 of each file). The same snapshot always exports to the same bytes.

    Example: posttrain export gold.sft --format jsonl --out exports/sft
    """
    # Imported here: pyarrow.parquet and the scan machinery slow every other command's start.
    from posttrain.platform.export import MANIFEST, export_table

    manifest = export_table(open_warehouse(home), table, out, output_format, force=force)
    for exported in manifest.files:
        console.print(f"{out / exported.path}  {exported.rows:,} rows  sha256 {exported.sha256}")
    console.print(
        f"exported {manifest.table}@{manifest.snapshot_id} ({manifest.rows:,} rows) to {out}; "
        f"manifest: {out / MANIFEST}",
        highlight=False,
    )
