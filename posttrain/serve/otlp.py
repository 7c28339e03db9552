"""``POST /v1/traces``: an OTLP/HTTP traces receiver for GenAI-instrumented agents.

Point an OpenTelemetry exporter at the service (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=
http://host:8000/v1/traces``, header ``Authorization=Bearer <workspace token>``): protobuf
(``application/x-protobuf``) and JSON (``application/json``) bodies, gzip or not, are
answered as the OTLP specification says: 200 with an ``ExportTraceServiceResponse`` in the
request's encoding (``partial_success`` counting refused spans, or warning about spans
that carried no GenAI data), 400 with a ``google.rpc.Status`` for a body that does not
decode, 415 for another content type, 413 past the size bound, and 503 with
``Retry-After`` when recording failed (the exporter retries; nothing is half-kept).

Spans wait, per workspace and trace, until their trace is complete (its root span
arrived, or it was idle ``idle_seconds``); the trace's conversation is recorded before the
request that completed it is answered. Waiting spans are durable before their request is
answered (a :class:`~posttrain.platform.capture.spanlog.SpanLog` beside the capture log):
after a crash the service reads them back and completes their traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from posttrain.platform.capture.otlp import (
    OtlpDecodeError,
    Span,
    TraceBuffer,
    assemble_trace,
    decode_export,
    export_response,
    status_body,
)
from posttrain.platform.capture.spanlog import SpanLog
from posttrain.platform.settings import Settings

log = logging.getLogger("posttrain.serve.otlp")

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_INVALID_ARGUMENT = 3  # google.rpc.Code
_UNAVAILABLE = 14
_RESOURCE_EXHAUSTED = 8

Recorder = Callable[[Any, list[dict[str, Any]]], Any]


@dataclass
class OtlpStats:
    """Counters of the receiver since start."""

    requests: int = 0
    spans: int = 0
    spans_rejected: int = 0
    spans_without_genai: int = 0
    conversations: int = 0
    record_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters."""
        return dict(self.__dict__)


class TooLarge(Exception):
    """The decompressed body passed the bound."""


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge
    return out + inflater.flush()


class OtlpReceiver:
    """The receiver's state: trace buffers per workspace, the recorder, counters.

    Args:
        authorize: the service's FastAPI dependency returning the caller.
        recorder: called as ``recorder(caller, events)``; must be durable on return.
            Default: the serving app's capture service (bound when the app starts).
        idle_seconds: a trace whose root span never comes is complete after this long.
        max_body_bytes: bound on the (decompressed) request body.
        span_log: where waiting spans are made durable; None keeps them in memory only
            (a crash loses the traces not yet complete).
        owner_of: the caller object for a workspace name, for traces read back from
            ``span_log`` at start (default: the name itself).
    """

    def __init__(
        self,
        authorize: Callable[..., Any],
        recorder: Recorder | None = None,
        *,
        workspace_name: Callable[[Any], str] = lambda workspace: str(
            getattr(workspace, "name", workspace)
        ),
        idle_seconds: float = 30.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        span_log: SpanLog | None = None,
        owner_of: Callable[[str], Any] = lambda name: name,
    ) -> None:
        self.recorder = recorder
        self.span_log = span_log
        self.owner_of = owner_of
        self.workspace_name = workspace_name
        self.idle_seconds = idle_seconds
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.stats = OtlpStats()
        self._buffers: dict[str, tuple[Any, TraceBuffer]] = {}
        self._lock = anyio.Lock()
        self.router = APIRouter(tags=["OpenTelemetry"], lifespan=self._lifespan)
        self.router.add_api_route(
            "/v1/traces",
            self._endpoint(authorize),
            methods=["POST"],
            summary="OTLP/HTTP traces (GenAI semantic conventions) → conversations",
            response_class=Response,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        if self.recorder is None:
            service = app.state.service

            async def record(caller: Any, events: list[dict[str, Any]]) -> Any:
                return await service.accept(caller.workspace, events)

            self.recorder = record
        await self._replay()
        sweeper = asyncio.get_running_loop().create_task(self._sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            try:
                await self.flush()  # before the capture service stops
            except Exception as exc:
                log.error(
                    "OTLP traces buffered at shutdown not recorded (the span log keeps them): %s",
                    exc,
                )

    async def _replay(self) -> None:
        """Buffer the spans a previous run left in the span log; record the traces among
        them that are complete (their root arrived before the crash)."""
        span_log = self.span_log
        if span_log is None:
            return
        pending = await anyio.to_thread.run_sync(lambda: list(span_log.pending()))
        if not pending:
            return
        async with self._lock:
            now = self.clock()
            traces = []
            for name, spans in pending:
                owner = self.owner_of(name)
                traces += [(owner, trace) for trace in self._buffer(owner).add(spans, now)]
            failed = await self._record_or_requeue(traces)
            if failed is not None:
                log.error("recording OTLP traces read back at start failed (kept): %s", failed)
        log.info("OTLP: %d pending trace(s) read back from %s", len(pending), span_log.directory)

    async def _sweep(self) -> None:
        """Complete idle traces even when no request arrives."""
        while True:
            await asyncio.sleep(max(0.05, self.idle_seconds / 4))
            async with self._lock:
                now = self.clock()
                traces = [
                    (owner, trace)
                    for owner, buffer in self._buffers.values()
                    for trace in buffer.expire(now)
                ]
                failed = await self._record_or_requeue(traces)
                if failed is not None:
                    self.stats.record_failures += 1
                    log.error("recording idle OTLP traces failed (kept, retried): %s", failed)

    def _endpoint(self, authorize: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
        async def traces(
            request: Request,
            workspace: Any = Depends(authorize),  # noqa: B008
        ) -> Response:
            """Receive an OTLP ``ExportTraceServiceRequest`` (protobuf or JSON, gzip or
            not); each complete trace becomes one conversation in the caller's workspace."""
            return await self.receive(request, workspace)

        return traces

    async def receive(self, request: Request, workspace: Any) -> Response:
        """Handle one export request; see the module docstring."""
        self.stats.requests += 1
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json_body = content_type == _JSON
        if content_type not in (_PROTOBUF, _JSON):
            return _status(
                415,
                _INVALID_ARGUMENT,
                f"content type {content_type or 'missing'!r}: OTLP/HTTP takes "
                f"{_PROTOBUF} or {_JSON}",
                json_body=False,
            )
        body = await request.body()
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = _gunzip(body, self.max_body_bytes)
            elif encoding not in ("", "identity"):
                return _status(
                    415,
                    _INVALID_ARGUMENT,
                    f"content encoding {encoding!r}: OTLP/HTTP takes gzip or none",
                    json_body=json_body,
                )
            if len(body) > self.max_body_bytes:
                raise TooLarge
        except TooLarge:
            return _status(
                413,
                _RESOURCE_EXHAUSTED,
                f"body larger than {self.max_body_bytes} bytes; export smaller batches",
                json_body=json_body,
            )
        except (zlib.error, EOFError) as exc:
            return _status(400, _INVALID_ARGUMENT, f"not gzip: {exc}", json_body=json_body)
        try:
            decoded = decode_export(body, content_type)
        except OtlpDecodeError as exc:
            return _status(400, _INVALID_ARGUMENT, str(exc), json_body=json_body)
        self.stats.spans += len(decoded.spans) + decoded.rejected
        self.stats.spans_rejected += decoded.rejected
        ignored = sum(1 for span in decoded.spans if not span.is_genai)
        self.stats.spans_without_genai += ignored
        async with self._lock:
            if self.span_log is not None and decoded.spans:
                try:
                    await anyio.to_thread.run_sync(
                        self.span_log.append, self.workspace_name(workspace), decoded.spans
                    )
                except OSError as exc:
                    self.stats.record_failures += 1
                    log.error("OTLP spans could not be made durable: %s", exc)
                    response = _status(
                        503,
                        _UNAVAILABLE,
                        f"could not make the spans durable: {exc}",
                        json_body=json_body,
                    )
                    response.headers["retry-after"] = "1"
                    return response
            traces = self._complete(workspace, decoded.spans)
            # On failure the exporter retries the request, and the retry's spans replace the
            # requeued ones (same ids) instead of landing twice.
            failed = await self._record_or_requeue(traces)
            if failed is not None:
                self.stats.record_failures += 1
                log.error("recording OTLP conversations failed: %s", failed, exc_info=failed)
                response = _status(
                    503,
                    _UNAVAILABLE,
                    f"could not record the conversations: {failed}",
                    json_body=json_body,
                )
                response.headers["retry-after"] = "1"
                return response
        message = "; ".join(decoded.problems[:5])
        if ignored and not message:
            message = f"{ignored} span(s) carried no gen_ai.* data and were not recorded"
        content, media_type = export_response(decoded.rejected, message, json_body=json_body)
        return Response(content, media_type=media_type)

    def _buffer(self, workspace: Any) -> TraceBuffer:
        name = self.workspace_name(workspace)
        if name not in self._buffers:
            self._buffers[name] = (workspace, TraceBuffer(self.idle_seconds))
        return self._buffers[name][1]

    def _complete(self, workspace: Any, spans: list[Span]) -> list[tuple[Any, list[Span]]]:
        now = self.clock()
        done = [(workspace, trace) for trace in self._buffer(workspace).add(spans, now)]
        for owner, buffer in self._buffers.values():
            done += [(owner, trace) for trace in buffer.expire(now)]
        return done

    async def flush(self) -> int:
        """Record every buffered trace now (at shutdown); returns how many."""
        async with self._lock:
            traces = [
                (owner, trace)
                for owner, buffer in self._buffers.values()
                for trace in buffer.drain()
            ]
            await self._record(traces)
            return len(traces)

    async def _record_or_requeue(self, traces: list[tuple[Any, list[Span]]]) -> Exception | None:
        """Record ``traces``; if that fails, put their spans back in their buffers (to be
        recorded by a later request or sweep) and return the error."""
        try:
            await self._record(traces)
        except Exception as exc:
            for owner, spans in traces:
                self._buffer(owner).add(spans, self.clock())
            return exc
        return None

    async def _record(self, traces: list[tuple[Any, list[Span]]]) -> None:
        by_owner: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        for owner, spans in traces:
            conversation = assemble_trace(spans)
            if conversation is None:
                continue
            entry = by_owner.setdefault(self.workspace_name(owner), (owner, []))
            entry[1].append(conversation.event())
        recorder = self.recorder
        if recorder is None:
            raise RuntimeError("no recorder: the receiver's app has not started")
        for owner, sessions in by_owner.values():
            if inspect.iscoroutinefunction(recorder):
                acks = await recorder(owner, sessions)
            else:
                acks = await anyio.to_thread.run_sync(recorder, owner, sessions)
            refused = [a for a in acks or [] if _refused(a)]
            if refused:
                raise RuntimeError(f"the capture log refused {len(refused)}: {refused[0]!r}")
            self.stats.conversations += len(sessions)
        await self._forget(traces)

    async def _forget(self, traces: list[tuple[Any, list[Span]]]) -> None:
        """Drop recorded traces (their conversations are in the capture log, or they had
        none) from the span log. A crash before this only records them again on replay:
        the same trace is the same session, a duplicate."""
        if self.span_log is None or not traces:
            return
        by_name: dict[str, list[str]] = {}
        for owner, spans in traces:
            if spans:
                by_name.setdefault(self.workspace_name(owner), []).append(spans[0].trace_id)
        span_log = self.span_log

        def forget() -> None:
            for name, trace_ids in by_name.items():
                span_log.forget(name, trace_ids)

        try:
            await anyio.to_thread.run_sync(forget)
        except OSError as exc:  # recorded already; at worst replayed as duplicates
            log.warning("OTLP: could not drop recorded traces from the span log: %s", exc)


def _refused(ack: Any) -> bool:
    status = ack.get("status") if isinstance(ack, dict) else getattr(ack, "status", None)
    return str(getattr(status, "value", status)) == "refused"


def _status(http_status: int, code: int, message: str, *, json_body: bool) -> Response:
    content, media_type = status_body(code, message, json_body=json_body)
    return Response(content, status_code=http_status, media_type=media_type)


def otlp_router(settings: Settings) -> APIRouter:
    """The receiver's router for the ``posttrain serve`` app (writers of a workspace)."""
    from posttrain.platform.access import Principal, Role, WorkspaceStore
    from posttrain.serve.app import require_role

    def owner_of(name: str) -> Principal:
        return Principal(WorkspaceStore.open(settings.home).workspace(name), Role.WRITER, "otlp")

    receiver = OtlpReceiver(
        require_role(Role.WRITER),
        workspace_name=lambda caller: caller.name,
        idle_seconds=settings.otlp.idle_seconds,
        max_body_bytes=settings.otlp.max_body_bytes,
        span_log=SpanLog(
            settings.capture.wal_path(settings.home) / "otlp-spans", fsync=settings.capture.fsync
        ),
        owner_of=owner_of,
    )
    return receiver.router
