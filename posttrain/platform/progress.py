"""Progress of long stages: rows done, rate, and where the report goes.

Stages report through a :class:`ProgressSink`; the CLI renders a ``rich`` progress bar,
Dagster logs a line every few seconds, tests pass :class:`NullProgress`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ProgressUpdate:
    """A snapshot of one stage's progress."""

    stage: str
    rows_done: int
    rows_total: int | None
    elapsed_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        """One line for a log, e.g. ``near-dup signatures: 12,000/40,000 rows (8,512 rows/s)``."""
        total = f"/{self.rows_total:,}" if self.rows_total is not None else ""
        return (
            f"{self.stage}: {self.rows_done:,}{total} rows "
            f"({self.rows_per_s:,.0f} rows/s, {self.elapsed_s:.1f}s)"
        )


class ProgressSink(Protocol):
    """Receives progress updates; implementations decide how often to show them."""

    def update(self, progress: ProgressUpdate) -> None: ...

    def finish(self, progress: ProgressUpdate) -> None: ...


class NullProgress:
    """Discards progress (tests, small inputs)."""

    def update(self, progress: ProgressUpdate) -> None:
        pass

    def finish(self, progress: ProgressUpdate) -> None:
        pass


@dataclass
class LogProgress:
    """Sends a line to ``log`` at most every ``interval_s`` seconds, and once at the end."""

    log: LogFn
    interval_s: float = 5.0
    _last: float = field(default=0.0, init=False)

    def update(self, progress: ProgressUpdate) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self.log(progress.describe())

    def finish(self, progress: ProgressUpdate) -> None:
        self.log(progress.describe() + " done")


class LogFn(Protocol):
    def __call__(self, message: str, /) -> None: ...


class ProgressTracker:
    """Counts rows for one stage and forwards updates to a sink.

    Example:
        >>> tracker = ProgressTracker("tokenize", total=10, sink=NullProgress())
        >>> tracker.advance(4); tracker.rows_done
        4
    """

    def __init__(self, stage: str, total: int | None, sink: ProgressSink) -> None:
        self.stage = stage
        self.total = total
        self.sink = sink
        self.rows_done = 0
        self._start = time.monotonic()

    def _snapshot(self) -> ProgressUpdate:
        return ProgressUpdate(
            self.stage, self.rows_done, self.total, time.monotonic() - self._start
        )

    def advance(self, rows: int) -> None:
        self.rows_done += rows
        self.sink.update(self._snapshot())

    def finish(self) -> ProgressUpdate:
        snapshot = self._snapshot()
        self.sink.finish(snapshot)
        return snapshot
