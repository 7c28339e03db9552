"""A ``rich`` progress display for :class:`~posttrain.platform.progress.ProgressSink` updates.

One bar per stage: rows done of the total (or a spinner when the total is unknown), rows
per second and elapsed time. Rich draws nothing live when the output is not a terminal,
so logs and tests see only the final lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from posttrain.platform.progress import ProgressUpdate


class RichProgress:
    """A :class:`ProgressSink` that draws each stage as a ``rich`` progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def _task(self, update: ProgressUpdate) -> TaskID:
        if update.stage not in self._tasks:
            self._tasks[update.stage] = self._progress.add_task(
                update.stage, total=update.rows_total, rate=""
            )
        return self._tasks[update.stage]

    def update(self, progress: ProgressUpdate) -> None:
        self._progress.update(
            self._task(progress), completed=progress.rows_done, rate=f"{progress.rows_per_s:,.0f}/s"
        )

    def finish(self, progress: ProgressUpdate) -> None:
        task = self._task(progress)
        self._progress.update(
            task,
            completed=progress.rows_done,
            total=progress.rows_total or progress.rows_done,
            rate=f"{progress.rows_per_s:,.0f}/s",
        )


@contextmanager
def rich_progress(console: Console) -> Iterator[RichProgress]:
    """A live progress display on ``console`` for the duration of the block."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield RichProgress(progress)
