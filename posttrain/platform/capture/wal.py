"""The capture write-ahead log: an event is acknowledged once it is here and fsync'd.

Group commit: callers hand encoded entries to :meth:`WriteAheadLog.submit`; one writer
thread takes everything queued, writes it with one ``write`` and makes it durable with one
``fdatasync``, then completes every caller at once. Many concurrent requests therefore
share one fsync, and the fsync rate, not the request rate, bounds the disk work.

The log is a folder of segment files ``<seq>-<random>.wal``; the active segment takes
appends, and is sealed (a new one opened) when it reaches a size or event bound, or when
the flusher asks (age). A sealed segment is one flush batch, its file stem the batch id
recorded in the Iceberg snapshot summaries; it is deleted (trimmed) only after the commit.

Each entry is one line ``<crc32 hex> <json>\\n``. A crash can leave a torn last line (never
acknowledged: its fsync had not returned); reading stops there.

One process owns a log folder at a time (an exclusive ``flock`` on ``LOCK``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from posttrain.platform.errors import ConfigError

log = logging.getLogger(__name__)

SUFFIX = ".wal"
Done = Callable[[BaseException | None], None]
_ROTATE = object()
_STOP = object()


@dataclass
class _Active:
    path: Path
    fd: int
    bytes: int = 0
    events: int = 0
    opened: float = 0.0


@dataclass(frozen=True)
class _Append:
    data: bytes
    events: int
    done: Done


class WalClosedError(RuntimeError):
    """The log is closed, or broken by a failed write or fsync; nothing more is accepted."""


def encode_entry(payload: bytes) -> bytes:
    """One log line for ``payload`` (JSON without newlines)."""
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def read_segment(path: Path) -> Iterator[bytes]:
    """The payloads of a segment, in order, stopping at a torn or corrupt tail."""
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
                return
            payload = line[9:-1]
            try:
                crc = int(line[:8], 16)
            except ValueError:
                return
            if zlib.crc32(payload) != crc:
                return
            yield payload


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a new, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """A segmented, group-committed, fsync'd append log (see the module docstring).

    Args:
        directory: the log folder (created).
        fsync: make each group durable before completing it (turn off only in benchmarks
            of everything else).
        segment_max_bytes / segment_max_events: seal the active segment past either.
        on_sealed: called (from the writer thread) after a segment is sealed.
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        segment_max_bytes: int = 64 << 20,
        segment_max_events: int = 100_000,
        on_sealed: Callable[[], None] | None = None,
    ) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_events = segment_max_events
        self.on_sealed = on_sealed
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = (directory / "LOCK").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ConfigError(
                f"{directory}: the capture log is in use by another posttrain serve; "
                "give each service its own capture.wal_dir"
            ) from None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        existing = self.segments()
        self._seq = max((int(p.name.split("-", 1)[0]) for p in existing), default=0)
        self._sealed_bytes = sum(p.stat().st_size for p in existing)
        self._broken: BaseException | None = None
        self._count_lock = threading.Lock()
        self._closed = False
        self.groups = 0  # fsync'd groups, for the metrics
        self._active = self._open_segment()
        self._thread = threading.Thread(target=self._run, name="capture-wal", daemon=True)
        self._thread.start()

    # -- segments ---------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Every segment file, oldest first (the active one last)."""
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def sealed(self) -> list[Path]:
        """The segments ready to flush, oldest first."""
        # Names sort by sequence number: a segment being opened right now sorts after the
        # active one, so it is never taken for a sealed one.
        active = self._active.path.name
        return [path for path in self.segments() if path.name < active]

    def _open_segment(self) -> _Active:
        self._seq += 1
        path = self.directory / f"{self._seq:012d}-{secrets.token_hex(4)}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fsync_dir(self.directory)  # the file's name is durable before any entry is acked
        return _Active(path, fd, opened=time.monotonic())

    def _seal(self) -> None:
        if self._active.events == 0:
            return
        os.close(self._active.fd)
        with self._count_lock:
            self._sealed_bytes += self._active.bytes
            self._active = self._open_segment()
        if self.on_sealed is not None:
            self.on_sealed()

    def trim(self, path: Path) -> None:
        """Delete a flushed segment (only after its rows are committed to Iceberg)."""
        size = path.stat().st_size
        path.unlink()
        fsync_dir(self.directory)
        with self._count_lock:
            self._sealed_bytes -= size

    @property
    def pending_bytes(self) -> int:
        """Bytes in the log not yet flushed to Iceberg (sealed segments and the active one)."""
        return self._sealed_bytes + self._active.bytes

    @property
    def active_age_s(self) -> float:
        """Seconds since the active segment was opened (0 when it holds nothing)."""
        if self._active.events == 0:
            return 0.0
        return time.monotonic() - self._active.opened

    # -- appends ----------------------------------------------------------------------

    def submit(self, data: bytes, events: int, done: Done) -> None:
        """Append ``data`` (whole entries from :func:`encode_entry`); ``done(None)`` is called
        from the writer thread once it is durable, ``done(error)`` if it cannot be.

        Raises:
            WalClosedError: the log is closed or broken.
        """
        if self._closed or self._broken is not None:
            raise WalClosedError(f"capture log {self.directory} is not accepting writes")
        self._queue.put(_Append(data, events, done))

    def rotate(self) -> None:
        """Ask the writer to seal the active segment (no-op when it is empty)."""
        self._queue.put(_ROTATE)

    def append_sync(self, data: bytes, events: int, timeout: float = 30.0) -> None:
        """Append and wait until durable (for tests and scripts)."""
        finished = threading.Event()
        errors: list[BaseException | None] = []

        def done(error: BaseException | None) -> None:
            errors.append(error)
            finished.set()

        self.submit(data, events, done)
        if not finished.wait(timeout):
            raise TimeoutError("capture log write did not complete")
        if errors[0] is not None:
            raise errors[0]

    def close(self) -> None:
        """Finish queued appends, seal nothing, release the folder."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        os.close(self._active.fd)
        if self._active.events == 0:
            self._active.path.unlink(missing_ok=True)
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < 8192:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rotate = False
            chunks: list[bytes] = []
            waiting: list[Done] = []
            events = 0
            for item in items:
                if item is _STOP:
                    stop = True
                elif item is _ROTATE:
                    rotate = True
                else:
                    assert isinstance(item, _Append)
                    chunks.append(item.data)
                    waiting.append(item.done)
                    events += item.events
            if chunks:
                self._write_group(b"".join(chunks), events, waiting)
            if (
                not stop
                and self._broken is None
                and (
                    rotate
                    or self._active.bytes >= self.segment_max_bytes
                    or self._active.events >= self.segment_max_events
                )
            ):
                try:
                    self._seal()
                except OSError as exc:  # no new segment (disk full): accept nothing more
                    log.exception("capture log: cannot open a new segment")
                    self._broken = exc

    def _write_group(self, buffer: bytes, events: int, waiting: list[Done]) -> None:
        error: BaseException | None = self._broken
        if error is None:
            try:
                view = memoryview(buffer)
                while view:
                    written = os.write(self._active.fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fdatasync(self._active.fd)
            except OSError as exc:
                # After a failed fsync the file's state is unknown: accept nothing more.
                self._broken = error = exc
            else:
                self._active.bytes += len(buffer)
                self._active.events += events
                self.groups += 1
        for done in waiting:
            try:
                done(error)
            except Exception:  # a caller gone (its loop closed) must not stop the writer
                log.exception("capture log: a completion callback failed")
