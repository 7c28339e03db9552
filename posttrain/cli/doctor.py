"""``posttrain doctor``: find broken invariants a crash can leave, and repair the safe ones."""

from __future__ import annotations

from typing import Annotated

import typer

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.doctor import diagnose, repair

HELP = (
    "Check the warehouse for states a crash between two commits can leave: duplicate "
    "bronze record ids, silver rows whose record is not in bronze, a record in both silver "
    "tables, duplicates pointing to records silver does not keep, gold out of step with "
    "silver.\n\n"
    "With [bold]--repair[/], fix what is safe: keep one bronze row per record id, and "
    "remove contradictory silver rows so the next silver build processes those records "
    "again. Each repair is one commit whose snapshot summary records what it did.\n\n"
    "Exit status: 0 when healthy (or fully repaired), 1 when problems remain."
)


@app.command(help=HELP)
def doctor(
    home: HomeOption = None,
    fix: Annotated[bool, typer.Option("--repair", help="Repair what is safe to repair.")] = False,
) -> None:
    warehouse = open_warehouse(home)
    diagnosis = diagnose(warehouse)
    if diagnosis.healthy:
        console.print("healthy: every invariant holds.", highlight=False)
    for finding in diagnosis.findings:
        console.print(f"[bold red]problem:[/] {finding.describe()}", highlight=False)
        action = "repair" if finding.repairable else "to fix"
        console.print(f"  {action}: {finding.fix}", highlight=False)
    if diagnosis.pending:
        console.print(
            f"note: {diagnosis.pending:,} bronze records wait for the next silver build.",
            highlight=False,
        )
    if diagnosis.healthy:
        return
    if not fix:
        if any(finding.repairable for finding in diagnosis.findings):
            console.print("Run `posttrain doctor --repair` to repair.", highlight=False)
        raise typer.Exit(1)
    for made in repair(warehouse, diagnosis):
        console.print(f"[bold green]repaired:[/] {made.describe()}", highlight=False)
    if not diagnose(warehouse).healthy:
        console.print("problems remain: see above for the commands to run.", highlight=False)
        raise typer.Exit(1)
    console.print("healthy now: every invariant holds.", highlight=False)
