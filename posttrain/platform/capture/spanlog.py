"""OTLP spans of traces not yet complete, durable from the moment they are answered.

A batching exporter sends a trace's spans over several requests, and the conversation is
assembled only when the trace is complete (its root span arrived, or it went idle). Until
then the spans live here as well as in memory: the receiver appends a request's spans and
makes them durable before it answers 200, and forgets a trace only once its conversation
is in the capture write-ahead log. After a crash (``kill -9``) the service reads the
folder back and carries on assembling where it stopped.

Layout: ``<directory>/<workspace>/<time ns>-<random>.spans``, one file per request (its
spans, any traces), each line a :func:`~posttrain.platform.capture.wal.encode_entry` line
(CRC-checked JSON of one span), so a torn last line (never acknowledged) is skipped on
reading. One file per request costs one ``fdatasync`` per request whatever the number of
traces in it; a file is deleted once every trace with spans in it is forgotten.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from posttrain.platform.capture.otlp import Span
from posttrain.platform.capture.wal import encode_entry, fsync_dir, read_segment

SUFFIX = ".spans"


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
        self._lock = threading.Lock()
        self._traces_in: dict[Path, set[str]] = {}  # file → traces not forgotten
        self._files_of: dict[tuple[str, str], set[Path]] = {}  # (workspace, trace) → files

    def _track(self, workspace: str, trace_id: str, path: Path) -> None:
        self._traces_in.setdefault(path, set()).add(trace_id)
        self._files_of.setdefault((workspace, trace_id), set()).add(path)

    def append(self, workspace: str, spans: Iterable[Span]) -> None:
        """Append ``spans`` (any traces) and make them durable; blocking (call it from a
        thread). Raises OSError when the disk refuses: the request must not be answered
        200 then."""
        spans = list(spans)
        if not spans:
            return
        folder = self.directory / workspace
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                fsync_dir(self.directory)
        path = folder / f"{time.time_ns():020d}-{secrets.token_hex(4)}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            data = memoryview(b"".join(encode_entry(span_to_json(span)) for span in spans))
            while data:
                data = data[os.write(fd, data) :]
            if self.fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        if self.fsync:
            fsync_dir(folder)  # the file's name is durable before the answer
        with self._lock:
            for span in spans:
                self._track(workspace, span.trace_id, path)

    def forget(self, workspace: str, trace_ids: Iterable[str]) -> None:
        """Drop traces whose conversation is recorded (durably) in the capture log; a file
        goes when none of its traces is left."""
        emptied: list[Path] = []
        with self._lock:
            for trace_id in trace_ids:
                for path in self._files_of.pop((workspace, trace_id), ()):
                    left = self._traces_in.get(path)
                    if left is None:
                        continue
                    left.discard(trace_id)
                    if not left:
                        del self._traces_in[path]
                        emptied.append(path)
        for path in emptied:
            path.unlink(missing_ok=True)
        if emptied and self.fsync:
            fsync_dir(self.directory / workspace)

    def pending(self) -> Iterator[tuple[str, list[Span]]]:
        """Every pending trace as (workspace, its spans in arrival order), from the files a
        previous run left; they are tracked again, so :meth:`forget` deletes them."""
        traces: dict[tuple[str, str], list[Span]] = {}
        for path in sorted(self.directory.glob(f"*/*{SUFFIX}")):
            workspace = path.parent.name
            spans = [span_from_json(payload) for payload in read_segment(path)]
            if not spans:  # the crash came before its first line was durable
                path.unlink(missing_ok=True)
                continue
            with self._lock:
                for span in spans:
                    self._track(workspace, span.trace_id, path)
                    traces.setdefault((workspace, span.trace_id), []).append(span)
        for (workspace, _), spans in traces.items():
            yield workspace, spans
