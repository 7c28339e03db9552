"""The ``capture:`` section of the settings file: the log, the flusher and the limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from posttrain.platform.config import FrozenConfig


class CaptureSettings(FrozenConfig):
    """How ``posttrain serve`` logs, flushes and limits captured events.

    Example ``posttrain.yaml``::

        capture:
          flush_interval_s: 30      # a micro-batch to bronze at least this often
          flush_max_events: 100000  # ... or as soon as this many events wait
          max_wal_bytes: 1073741824 # past this, requests get 429 + Retry-After
    """

    wal_dir: str | None = None
    """The write-ahead log folder; default ``<home>/capture/wal``."""
    fsync: bool = True
    """fsync each group commit before acknowledging (off only to benchmark without it)."""
    flush_interval_s: float = Field(default=30.0, gt=0)
    """Seconds an event may wait in the log before its micro-batch is committed."""
    flush_max_events: int = Field(default=100_000, ge=1)
    """Events per micro-batch: a batch is committed as soon as it holds this many."""
    flush_max_bytes: int = Field(default=64 << 20, ge=1024)
    """Log bytes per micro-batch: a batch is committed as soon as it is this big."""
    max_wal_bytes: int = Field(default=1 << 30, ge=1024)
    """Backpressure: past this many unflushed log bytes, requests get 429 + Retry-After."""
    max_body_bytes: int = Field(default=16 << 20, ge=1024)
    """Largest request body; larger ones get 413."""
    max_batch_events: int = Field(default=10_000, ge=1)
    """Most events in one request; more get 413."""

    def wal_path(self, home: Path) -> Path:
        return Path(self.wal_dir).expanduser() if self.wal_dir else home / "capture" / "wal"
