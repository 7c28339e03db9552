"""``posttrain outcomes ingest|cut`` and ``posttrain snapshot``: late outcomes and frozen cuts.

Heavy imports (pyiceberg, DuckDB) stay inside the commands so ``posttrain --help`` is fast.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.errors import ConfigError

outcomes_app = typer.Typer(
    help="Outcomes (rewards, test results, feedback) that arrive after their records.",
    no_args_is_help=True,
)
app.add_typer(outcomes_app, name="outcomes")

MAX_REJECTIONS_SHOWN = 20


@outcomes_app.command("ingest")
def ingest_outcomes(
    files: Annotated[list[Path], typer.Argument(help="JSONL, JSON or Parquet outcome files.")],
    home: HomeOption = None,
) -> None:
    """Append outcomes to bronze.outcomes, once each; bad lines are reported, good ones land.

    Each row: record_id, kind (reward, preference, test_result, feedback,
    text), value and/or text; optionally source, event_id, arrived_at (ISO
    8601 with a time zone).
    """
    from posttrain.platform.outcomes.ingest import ingest_outcome_file, read_outcome_file

    for path in files:  # every file is checked before anything is written
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        read_outcome_file(path)
    warehouse = open_warehouse(home)
    rejected = 0
    for path in files:
        report = ingest_outcome_file(warehouse, path)
        console.print(
            f"{path}: {report.rows_read:,} read, {report.rows_added:,} added, "
            f"{report.rows_already_present:,} already present, "
            f"{len(report.rejections):,} rejected (snapshot {report.snapshot_id})"
        )
        for rejection in report.rejections[:MAX_REJECTIONS_SHOWN]:
            console.print(f"  rejected {rejection}", soft_wrap=True, markup=False)
        if len(report.rejections) > MAX_REJECTIONS_SHOWN:
            console.print(f"  ... and {len(report.rejections) - MAX_REJECTIONS_SHOWN} more")
        rejected += len(report.rejections)
    if rejected:
        raise typer.Exit(1)


@outcomes_app.command("cut")
def cut(
    window_hours: Annotated[
        float, typer.Option(min=0, help="Hours an unlabeled record waits for outcomes.")
    ] = 24.0,
    as_of: Annotated[
        str | None, typer.Option(help="Cut time, ISO 8601 with a time zone (default: now).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Rebuild silver.labeled under the late-arrival policy (what the outcomes sensor runs)."""
    from posttrain.platform.outcomes.labeled import cut_labeled
    from posttrain.platform.outcomes.policy import LateArrivalPolicy

    when = datetime.fromisoformat(as_of) if as_of else None
    if when is not None and when.tzinfo is None:
        raise ConfigError(f"--as-of {as_of!r}: give a time zone, e.g. {as_of}+00:00")
    result = cut_labeled(
        open_warehouse(home), LateArrivalPolicy(window_hours=window_hours), as_of=when
    )
    console.print(
        f"silver.labeled: {result.rows:,} rows, {result.outcomes_included:,} outcomes up to "
        f"{result.outcome_cutoff or 'none'}; snapshot {result.snapshot_id}"
        + ("" if result.committed else " (unchanged, nothing committed)")
    )


@app.command()
def snapshot(
    table: Annotated[str, typer.Argument(help="Table to freeze rows of, e.g. silver.labeled")],
    filter_: Annotated[
        str,
        typer.Option(
            "--filter",
            help="Row filter in Iceberg syntax, e.g. \"reward > 0 and source = 'agent'\"",
        ),
    ],
    name: Annotated[str, typer.Option("--as", help="Name (and tag) of the frozen snapshot.")],
    snapshot_id: Annotated[
        int | None, typer.Option("--snapshot-id", help="Snapshot to read (default: current).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Freeze the rows of a pinned snapshot matching a filter as a named, tagged table."""
    from posttrain.platform.outcomes.snapshot import freeze

    frozen = freeze(open_warehouse(home), table, filter_, name, snapshot_id=snapshot_id)
    console.print(
        f"froze {frozen.rows:,} rows of {frozen.source_table}@{frozen.source_snapshot_id} "
        f"as {frozen.table} (tag {frozen.name}, snapshot {frozen.snapshot_id}); "
        f"outcome cut-off {frozen.outcome_cutoff or 'none'}",
        soft_wrap=True,
        markup=False,
    )
