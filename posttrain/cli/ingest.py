"""``posttrain ingest``: raw chat files → ``bronze.records``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table as RichTable

from posttrain.cli._app import HomeOption, app, console, err_console, open_warehouse
from posttrain.cli._progress import rich_progress
from posttrain.platform.errors import ConfigError
from posttrain.platform.ingest.bronze import IngestReport
from posttrain.platform.ingest.bronze import ingest as ingest_specs
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.sources import SourceSpec, load_sources

HELP = (
    "Ingest chat files into [bold]bronze.records[/], once per record.\n\n"
    "PATH is a file or a folder, searched recursively, in path order: JSON Lines (*.jsonl, "
    "*.ndjson, also .gz or .zst compressed), JSON arrays (*.json), Parquet (*.parquet, *.pq) "
    "and Hugging Face datasets folders (save_to_disk *.arrow files, or the hub layout "
    "data/<split>-*.parquet; the split is kept as a column). Other files are skipped and "
    "listed. Or give [bold]--sources[/] a YAML file listing several inputs, each with its "
    "own source, workspace, license and format.\n\n"
    "The chat format (openai, sharegpt, alpaca, prompt_completion) is detected from the "
    "records unless --format says it. Every file is checked before anything is written, "
    "and ingesting the same file again adds nothing. Workspace, license and description "
    "are recorded once per source: `posttrain sources set` corrects them later.\n\n"
    "[bold]Examples:[/]\n\n"
    "  posttrain ingest data/samples/math_tutor.jsonl --source math-tutor --license CC-BY-4.0\n\n"
    "  posttrain ingest --sources data/sources.yaml"
)


def default_source_name(path: Path) -> str:
    """A source name from a file stem or folder name, e.g. ``math_tutor.jsonl`` → ``math_tutor``."""
    stem = path.name if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "default"


def _path_spec(
    path: Path,
    source: str | None,
    workspace: str,
    license_: str,
    fmt: ChatFormat | None,
    description: str = "",
) -> SourceSpec:
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    try:
        return SourceSpec(
            path=path.resolve(),
            source=source or default_source_name(path),
            workspace=workspace,
            license=license_,
            description=description,
            format=fmt,
        )
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid option: {problems}") from None


def _print_report(report: IngestReport) -> None:
    view = RichTable(header_style="bold")
    with_split = any(file.split for file in report.files)
    columns = ["file", "source", "format", *(["split"] if with_split else [])]
    for column in (*columns, "rows", "added", "already present"):
        numeric = column in ("rows", "added", "already present")
        view.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
    for file in report.files:
        view.add_row(
            file.name or file.path.name,
            file.source,
            file.format.value,
            *([file.split or "-"] if with_split else []),
            f"{file.rows_read:,}",
            f"{file.rows_added:,}",
            f"{file.already_present:,}",
        )
    console.print(view)
    if report.skipped:
        console.print(f"Skipped {len(report.skipped)} file(s):", highlight=False)
        for skipped in report.skipped:
            console.print(f"  {skipped.path}: {skipped.reason}", highlight=False, soft_wrap=True)
    if report.sources_updated:
        names = ", ".join(report.sources_updated)
        console.print(f"Source metadata recorded for {names} (see `posttrain sources list`).")
    if report.rows_added == 0:
        console.print("Nothing new: every record is already in bronze.records.")
    console.print(
        f"batch [bold]{report.batch_id}[/], snapshot {report.snapshot_id or '-'}: "
        f"{report.rows_added:,} of {report.rows_read:,} rows added in {report.elapsed_s:.2f}s "
        f"({report.rows_per_s:,.0f} rows/s)",
        highlight=False,
    )


@app.command(help=HELP)
def ingest(
    path: Annotated[
        Path | None,
        typer.Argument(help="An input file, or a folder searched recursively.", show_default=False),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            "--sources",
            help="A sources YAML listing inputs (paths relative to the project root).",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Source name stored on every row. Default: the file or folder name."),
    ] = None,
    workspace: Annotated[str, typer.Option(help="Workspace stored on every row.")] = "default",
    license_: Annotated[
        str, typer.Option("--license", help="License stored on every row, e.g. CC-BY-4.0.")
    ] = "unknown",
    description: Annotated[
        str, typer.Option(help="What the source is; recorded once per source.")
    ] = "",
    fmt: Annotated[
        ChatFormat | None,
        typer.Option(
            "--format", help="Chat format of the records. Default: detected.", show_default=False
        ),
    ] = None,
    batch_id: Annotated[
        str | None,
        typer.Option(
            help="Batch id stored on new rows. Default: derived from the files' contents."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    if (path is None) == (sources is None):
        raise ConfigError("give either a PATH to ingest or --sources FILE.yaml (one of the two)")
    if sources is not None:
        per_entry = {
            "--source": source,
            "--format": fmt,
            "--workspace": workspace != "default",
            "--license": license_ != "unknown",
            "--description": description != "",
        }
        clashing = [name for name, value in per_entry.items() if value]
        if clashing:
            raise ConfigError(
                f"{', '.join(clashing)} cannot be combined with --sources; "
                f"set them per entry in {sources}"
            )
        specs = load_sources(sources)
    else:
        assert path is not None
        specs = [_path_spec(path, source, workspace, license_, fmt, description)]
    warehouse = open_warehouse(home)
    with rich_progress(err_console) as progress:
        report = ingest_specs(warehouse, specs, batch_id=batch_id, progress=progress)
    _print_report(report)
