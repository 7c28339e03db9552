"""OTLP spans of traces not yet complete, durable from the moment they are answered.

A batching exporter sends a trace's spans over several requests, and the conversation is
assembled only when the trace is complete (its root span arrived, or it went idle). Until
then the spans live here as well as in memory: the receiver appends a request's spans and
makes them durable before it answers 200, and forgets a trace only once its conversation
is in the capture write-ahead log. After a crash (``kill -9``) the service reads the
folder back and carries on assembling where it stopped.

Layout: ``<directory>/<workspace>/<sha256(trace id)[:32]>.spans``, one file per trace, each
line a :func:`~posttrain.platform.capture.wal.encode_entry` line (CRC-checked JSON of one
span), so a torn last line (never acknowledged) is skipped on reading. A trace's file is
small and short-lived; one file per trace makes forgetting a trace one ``unlink``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from posttrain.platform.capture.otlp import Span
from posttrain.platform.capture.wal import encode_entry, read_segment

SUFFIX = ".spans"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def span_to_json(span: Span) -> bytes:
    """One span as JSON (attributes are JSON values already: bytes arrive base64'd)."""
    return orjson.dumps(
        {
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "name": span.name,
            "start_ns": span.start_ns,
            "end_ns": span.end_ns,
            "attributes": dict(span.attributes),
            "events": [[name, at, dict(attrs)] for name, at, attrs in span.events],
            "resource": dict(span.resource),
        }
    )


def span_from_json(data: bytes) -> Span:
    """The :class:`Span` :func:`span_to_json` wrote."""
    raw: dict[str, Any] = orjson.loads(data)
    return Span(
        trace_id=raw["trace_id"],
        span_id=raw["span_id"],
        parent_span_id=raw["parent_span_id"],
        name=raw["name"],
        start_ns=raw["start_ns"],
        end_ns=raw["end_ns"],
        attributes=raw["attributes"],
        events=tuple((name, at, attrs) for name, at, attrs in raw["events"]),
        resource=raw["resource"],
    )


class SpanLog:
    """The folder of pending traces' spans (see the module docstring).

    Args:
        directory: the folder (created); one service owns it (it sits in the capture
            log's folder, which the service locks).
        fsync: make each append durable before returning (off only in benchmarks).
    """

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, workspace: str, trace_id: str) -> Path:
        digest = hashlib.sha256(trace_id.encode()).hexdigest()[:32]
        return self.directory / workspace / f"{digest}{SUFFIX}"

    def append(self, workspace: str, spans: Iterable[Span]) -> None:
        """Append ``spans`` (any traces) and make them durable; blocking (call it from a
        thread). Raises OSError when the disk refuses: the request must not be answered
        200 then."""
        by_trace: dict[str, list[bytes]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, []).append(encode_entry(span_to_json(span)))
        if not by_trace:
            return
        folder = self.directory / workspace
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.directory)
        created = False
        for trace_id, lines in by_trace.items():
            path = self._path(workspace, trace_id)
            created |= not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                data = memoryview(b"".join(lines))
                while data:
                    data = data[os.write(fd, data) :]
                if self.fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
        if created and self.fsync:
            _fsync_dir(folder)  # a new trace's file name is durable before the answer

    def forget(self, workspace: str, trace_ids: Iterable[str]) -> None:
        """Drop traces whose conversation is recorded (durably) in the capture log."""
        removed = False
        for trace_id in trace_ids:
            path = self._path(workspace, trace_id)
            if path.exists():
                path.unlink()
                removed = True
        if removed and self.fsync:
            _fsync_dir(self.directory / workspace)

    def pending(self) -> Iterator[tuple[str, list[Span]]]:
        """Every pending trace as (workspace, its spans), oldest files first."""
        files = sorted(
            (path for path in self.directory.glob(f"*/*{SUFFIX}")),
            key=lambda path: path.stat().st_mtime_ns,
        )
        for path in files:
            spans = [span_from_json(payload) for payload in read_segment(path)]
            if spans:
                yield path.parent.name, spans
            else:  # created, but the crash came before its first line was durable
                path.unlink(missing_ok=True)
