"""``POST /v1/chat/completions``: the OpenAI-compatible capture proxy.

An agent is captured by changing its base URL to the service (``.../v1``) and its API key
to a workspace token. The proxy forwards the request body byte for byte to the configured
upstream with the upstream key of the caller's workspace (from the environment, see
:class:`~posttrain.platform.capture.proxy.ProxySettings`), and returns the upstream's
answer unchanged: status, body and headers, streamed chunk by chunk when the request
streams, errors (4xx/5xx) included.

Recording happens off the hot path. The response bytes are only copied into a buffer while
they pass; after the response is sent (or the client went away), a detached task rebuilds
the completion (:func:`~posttrain.platform.capture.proxy.assemble_stream`) and hands the
session to the recorder in a worker thread. A recorder that raises or refuses never reaches
the agent: the failure is counted in :class:`ProxyStats` and logged as an error.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx2 as httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from posttrain.platform.capture.proxy import (
    Exchange,
    ProxySettings,
    assemble_stream,
    events_from_exchange,
)
from posttrain.platform.settings import Settings

log = logging.getLogger("posttrain.serve.proxy")

# Headers that describe one hop, the caller's own credentials, or a body encoding the proxy
# may change: never forwarded in either direction.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
        "authorization",
        "api-key",
        "cookie",
    }
)

SESSION_HEADER = "x-posttrain-session"
"""Request header naming the agent's session: its calls are then recorded as turns of it."""

Recorder = Callable[[Any, list[dict[str, Any]]], Any]
"""Records capture events (JSON objects) for the caller; sync (run in a thread) or async.
Raising, or returning acks of which some are refused, counts as a capture failure."""


def service_recorder(request: Request) -> tuple[Recorder, Callable[[str], None]]:
    """The recorder and failure alarm of the ``posttrain serve`` app serving ``request``:
    ``CaptureService.accept`` into the caller's workspace, and its failure counter."""
    service = request.app.state.service

    async def record(principal: Any, events: list[dict[str, Any]]) -> Any:
        return await service.accept(principal.workspace, events)

    def alarm(reason: str) -> None:
        service.record_capture_failure("proxy")

    return record, alarm


@dataclass(frozen=True)
class _Call:
    """What recording one proxied call needs besides the answer: who, where, the request."""

    sink: tuple[Recorder, Callable[[str], None] | None]
    session_id: str | None
    workspace: Any
    payload: dict[str, Any]
    started: float
    request_id: str | None


@dataclass
class ProxyStats:
    """Counters of the proxy since start (exposed on the service's metrics)."""

    requests: int = 0
    streamed: int = 0
    upstream_errors: int = 0
    upstream_unreachable: int = 0
    client_disconnects: int = 0
    captured: int = 0
    capture_failures: int = 0
    not_captured: int = 0
    last_failure: str = ""
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """The counters, without the in-flight tasks."""
        return {k: v for k, v in self.__dict__.items() if k != "pending"} | {
            "capture_pending": len(self.pending)
        }


class CaptureProxy:
    """The proxy's state: one pooled HTTP client to the upstream, the recorder, counters.

    Args:
        settings: where to forward, and the environment variables holding upstream keys.
        authorize: the service's FastAPI dependency that returns the caller (answers
            401/403 itself).
        recorder: called as ``recorder(caller, events)`` after each response; default:
            the serving app's capture service (:func:`service_recorder`).
        workspace_name: the workspace name of a caller (for the per-workspace upstream key).
        on_failure: called once per capture failure (default: the service's counter).
    """

    def __init__(
        self,
        settings: ProxySettings,
        authorize: Callable[..., Any],
        recorder: Recorder | None = None,
        *,
        workspace_name: Callable[[Any], str] = lambda workspace: str(
            getattr(workspace, "name", workspace)
        ),
        on_failure: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.workspace_name = workspace_name
        self.on_failure = on_failure
        self.stats = ProxyStats()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.router = APIRouter(tags=["capture proxy"], lifespan=self._lifespan)
        self.router.add_api_route(
            "/v1/chat/completions",
            self._endpoint(authorize),
            methods=["POST"],
            summary="OpenAI chat completions, forwarded upstream and captured",
            response_class=Response,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        # Exits before the capture service stops: pending captures reach the log first.
        try:
            yield
        finally:
            await self.aclose()

    def _endpoint(self, authorize: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
        async def chat_completions(
            request: Request,
            workspace: Any = Depends(authorize),  # noqa: B008
        ) -> Response:
            """Forward an OpenAI ``chat.completions`` request to the configured upstream and
            return its answer unchanged (streaming or not); the exchange is recorded into
            the caller's workspace after the response is sent."""
            return await self.forward(request, workspace)

        return chat_completions

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client, created in the running event loop on first use."""
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.settings.max_connections,
                max_keepalive_connections=self.settings.max_connections,
            )
            timeout = httpx.Timeout(
                self.settings.timeout_seconds, connect=self.settings.connect_timeout_seconds
            )
            self._client = httpx.AsyncClient(
                base_url=self.settings.upstream_url.rstrip("/") + "/",
                limits=limits,
                timeout=timeout,
                transport=self._transport,
            )
        return self._client

    async def aclose(self, drain_seconds: float = 10.0) -> None:
        """Wait for pending captures (bounded), then close the upstream connections."""
        if self.stats.pending:
            await asyncio.wait(set(self.stats.pending), timeout=drain_seconds)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def upstream_headers(self, request: Request, workspace: Any) -> dict[str, str]:
        """The caller's headers minus hop-by-hop and credentials, plus the upstream key."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("x-posttrain")}
        name = self.workspace_name(workspace)
        variable = self.settings.workspace_key_env.get(name, self.settings.api_key_env)
        key = os.environ.get(variable)
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def forward(self, request: Request, workspace: Any) -> Response:
        """Forward one request; see the module docstring."""
        started = time.perf_counter()
        self.stats.requests += 1
        body = bytearray()
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                return _too_large(limit)
        session_id = request.headers.get(SESSION_HEADER) or None
        if self.recorder is not None:
            sink: tuple[Recorder, Callable[[str], None] | None] = (self.recorder, self.on_failure)
        else:
            sink = service_recorder(request)
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        payload: dict[str, Any] | None = parsed if isinstance(parsed, dict) else None
        streamed = bool(payload and payload.get("stream"))
        upstream_request = self.client.build_request(
            "POST",
            "chat/completions",
            content=bytes(body),
            headers=self.upstream_headers(request, workspace),
            params=request.query_params,
        )
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.TimeoutException as exc:
            return self._unreachable(504, f"upstream timed out: {exc!r}")
        except httpx.HTTPError as exc:
            return self._unreachable(502, f"upstream unreachable: {exc!r}")
        headers = _response_headers(upstream.headers)
        call = None
        if payload is not None:
            call = _Call(
                sink, session_id, workspace, payload, started, upstream.headers.get("x-request-id")
            )
        if upstream.status_code >= 400 or not streamed:
            try:
                content = await upstream.aread()
            except httpx.HTTPError as exc:
                return self._unreachable(502, f"upstream broke off its answer: {exc!r}")
            finally:
                await upstream.aclose()
            if upstream.status_code >= 400:
                self.stats.upstream_errors += 1
            elif call is not None:
                self._capture(
                    call, upstream.status_code, content, streamed=False, outcome="completed"
                )
            return Response(content, status_code=upstream.status_code, headers=headers)
        self.stats.streamed += 1
        return StreamingResponse(
            self._relay(upstream, call),
            status_code=upstream.status_code,
            headers=headers,
        )

    async def _relay(self, upstream: httpx.Response, call: _Call | None) -> AsyncIterator[bytes]:
        captured = bytearray()
        limit = self.settings.max_capture_bytes
        outcome = "client_disconnected"
        truncated = False
        try:
            async for chunk in upstream.aiter_bytes():
                if len(captured) < limit:
                    captured += chunk
                else:
                    truncated = True  # the agent gets every byte; the record says it is cut
                yield chunk
            outcome = "capture_truncated" if truncated else "completed"
        except httpx.HTTPError as exc:
            # Raising aborts the agent's connection too, as the upstream aborted ours: a
            # clean end here would pass a cut answer off as a whole one.
            outcome = "upstream_broke_off"
            log.warning("upstream stream broke off: %r", exc)
            raise
        finally:
            # A client that went away cancels this generator: the upstream connection must
            # still be closed (shielded, or the cancellation would skip it).
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
            if outcome == "client_disconnected":
                self.stats.client_disconnects += 1
            if call is not None:
                self._capture(
                    call, upstream.status_code, bytes(captured), streamed=True, outcome=outcome
                )

    def _unreachable(self, status: int, message: str) -> Response:
        self.stats.upstream_unreachable += 1
        log.warning("%s", message)
        return JSONResponse(
            {"error": {"message": message, "type": "upstream_error", "code": None}},
            status_code=status,
        )

    def _capture(
        self, call: _Call, status: int, content: bytes, *, streamed: bool, outcome: str
    ) -> None:
        """Schedule the recording of one exchange (streamed or not); returns at once."""
        latency_ms = (time.perf_counter() - call.started) * 1000
        task = asyncio.get_running_loop().create_task(
            self._record(
                call.sink,
                call.session_id,
                call.workspace,
                Exchange(
                    request=call.payload,
                    status=status,
                    response=None,
                    streamed=streamed,
                    outcome=outcome,
                    latency_ms=latency_ms,
                    upstream_request_id=call.request_id,
                ),
                content,
            )
        )
        self.stats.pending.add(task)
        task.add_done_callback(self.stats.pending.discard)

    async def _record(
        self,
        sink: tuple[Recorder, Callable[[str], None] | None],
        session_id: str | None,
        workspace: Any,
        exchange: Exchange,
        content: bytes,
    ) -> None:
        recorder, on_failure = sink
        try:
            if exchange.streamed:
                response: Mapping[str, Any] | None = assemble_stream(content).completion()
            else:
                decoded = json.loads(content)
                response = decoded if isinstance(decoded, dict) else None
            events = events_from_exchange(
                replace(exchange, response=response),
                fallback_id=f"proxy-{uuid.uuid4().hex}",
                session_id=session_id,
            )
            if not events:
                self.stats.not_captured += 1
                return
            if inspect.iscoroutinefunction(recorder):
                acks = await recorder(workspace, events)
            else:
                acks = await anyio.to_thread.run_sync(recorder, workspace, events)
            refused = [a for a in acks or [] if _refused(a)]
            if refused:
                raise RuntimeError(f"the capture log refused {len(refused)}: {refused[0]!r}")
            self.stats.captured += len(events)
        except Exception as exc:  # a capture failure must never reach the agent
            self.stats.capture_failures += 1
            self.stats.last_failure = f"{type(exc).__name__}: {exc}"
            log.error("capture failed (the agent's call was answered): %s", exc, exc_info=exc)
            if on_failure is not None:
                try:
                    on_failure(self.stats.last_failure)
                except Exception:  # the alarm itself must not break the proxy either
                    log.exception("capture failure alarm raised")


def _too_large(limit: int) -> Response:
    message = f"request body larger than {limit:,} bytes (proxy.max_request_bytes)"
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}},
        status_code=413,
    )


def _refused(ack: Any) -> bool:
    status = ack.get("status") if isinstance(ack, Mapping) else getattr(ack, "status", None)
    return str(getattr(status, "value", status)) == "refused"


def _response_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def proxy_router(settings: Settings) -> APIRouter:
    """The proxy's router for the ``posttrain serve`` app: writers of a workspace may call
    it, and it records into their workspace through the app's capture service."""
    from posttrain.platform.access import Role
    from posttrain.serve.app import require_role

    proxy = CaptureProxy(
        settings.proxy, require_role(Role.WRITER), workspace_name=lambda caller: caller.name
    )
    return proxy.router
