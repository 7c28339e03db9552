"""The ``posttrain serve`` HTTP application (FastAPI): capture, workspace reads, metrics.

:func:`create_app` builds it from resolved :class:`~posttrain.platform.settings.Settings`.
Every route but ``/healthz`` and ``/metrics`` authenticates a bearer token through
:func:`require_role` (the access layer in :mod:`posttrain.platform.access`); a route reads
or writes only the caller's workspace. OpenAPI is at ``/docs``.

Other features plug their routers in :func:`extra_routers` (the capture proxy, the OTLP
receiver); they record what they capture with ``request.app.state.service.accept(...)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, TypeAdapter

from posttrain.platform.access import ROLE_NEEDS, AccessError, Principal, Role, WorkspaceStore
from posttrain.platform.capture.events import (
    BatchAnswer,
    EventAck,
    EventBatch,
)
from posttrain.platform.capture.service import CaptureService, CaptureUnavailable
from posttrain.platform.errors import PosttrainError
from posttrain.platform.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["PrincipalDep", "create_app", "extra_routers", "read_json", "require_role"]


def extra_routers(settings: Settings) -> list[APIRouter]:
    """Routers of other features, included after the capture routes.

    The capture proxy (``/v1/chat/completions``) and the OTLP receiver (``/v1/traces``)
    add theirs here.
    """
    from posttrain.serve.otlp import otlp_router
    from posttrain.serve.proxy import proxy_router

    return [proxy_router(settings), otlp_router(settings)]


# -- authentication -------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else header.strip()
    return request.headers.get("x-api-key")


def require_role(role: Role | str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller's :class:`Principal`, if its role allows ``role``'s
    permission (``writer`` → write, ``reader`` → read, ``curator``, ``admin``).

    Answers 401 (no, malformed, unknown or revoked token) or 403 (role too weak), each
    with ``{"error": reason}``.
    """
    needed = ROLE_NEEDS[Role(role)]

    async def dependency(request: Request) -> Principal:
        store: WorkspaceStore = request.app.state.store
        store.refresh()
        principal = store.authenticate(_bearer(request))
        principal.require(needed)
        request.state.principal = principal
        return principal

    return dependency


PrincipalDep = Annotated[Principal, Depends(require_role(Role.WRITER))]
Writer = Annotated[Principal, Depends(require_role(Role.WRITER))]
Reader = Annotated[Principal, Depends(require_role(Role.READER))]


async def read_json(request: Request, limit: int) -> Any:
    """The request body decoded as JSON, at most ``limit`` bytes.

    Raises:
        HTTPException: 413 past the limit (before reading it all), 400 malformed JSON.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body larger than the limit of {limit:,} bytes")
    if not body:
        raise HTTPException(400, "empty body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


# -- capture routes -----------------------------------------------------------------------

capture_router = APIRouter(tags=["capture"])

_EVENT_BODY = {"$ref": "#/components/schemas/EventBatch"}


def _answer(acks: list[EventAck]) -> BatchAnswer:
    counts = {"accepted": 0, "duplicate": 0, "refused": 0}
    for ack in acks:
        counts[ack.status.value] += 1
    return BatchAnswer(acks=acks, **counts)


_ANSWER_JSON: TypeAdapter[BatchAnswer] = TypeAdapter(BatchAnswer)


async def _accept(request: Request, principal: Principal, events: Sequence[Any]) -> Response:
    service: CaptureService = request.app.state.service
    limit = service.capture.max_batch_events
    if len(events) > limit:
        raise HTTPException(413, f"{len(events):,} events in one request; the limit is {limit:,}")
    answer = _answer(await service.accept(principal.workspace, events))
    # Encoded here, not by FastAPI's response_model (kept for the OpenAPI schema): that
    # path validates the answer's acks a second time, per request, on the hot path.
    return Response(_ANSWER_JSON.dump_json(answer), media_type="application/json")


@capture_router.post(
    "/v1/events",
    response_model=BatchAnswer,
    summary="Capture a batch of sessions, turns and outcomes",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _EVENT_BODY}}}
    },
)
async def post_events(request: Request, principal: Writer) -> Response:
    """Each event is answered in order: ``accepted`` (in the fsync'd log), ``duplicate``
    (this workspace sent the same key before) or ``refused`` with a reason. 429 with
    ``Retry-After`` when the log is full; nothing of the batch is acknowledged then."""
    service: CaptureService = request.app.state.service
    body = await read_json(request, service.capture.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise HTTPException(422, 'expected a JSON object {"events": [event, ...]}')
    extra = sorted(set(body) - {"events"})
    if extra:
        raise HTTPException(422, f'expected only the key "events", found also {extra}')
    return await _accept(request, principal, body["events"])


def _typed_route(kind: Literal["session", "turn", "outcome"]) -> None:
    async def post_typed(request: Request, principal: Writer) -> Response:
        service: CaptureService = request.app.state.service
        body = await read_json(request, service.capture.max_body_bytes)
        events = body if isinstance(body, list) else [body]
        typed = [
            {"type": kind, **event} if isinstance(event, dict) and "type" not in event else event
            for event in events
        ]
        return await _accept(request, principal, typed)

    post_typed.__doc__ = (
        f"Capture one {kind} (a JSON object) or a list of them; ``type`` may be left out. "
        "Answered per event as ``POST /v1/events``."
    )
    capture_router.add_api_route(
        f"/v1/{kind}s",
        post_typed,
        methods=["POST"],
        response_model=BatchAnswer,
        summary=f"Capture {kind}s",
        name=f"post_{kind}s",
    )


_typed_route("session")
_typed_route("turn")
_typed_route("outcome")


# -- workspace reads ----------------------------------------------------------------------

read_router = APIRouter(tags=["workspace"])


class WhoAmI(BaseModel):
    workspace: str
    role: str
    token_id: str


@read_router.get("/v1/workspace", response_model=WhoAmI, summary="The caller's workspace")
async def whoami(
    principal: Annotated[Principal, Depends(require_role(Role.WRITER))],
) -> WhoAmI:
    return WhoAmI(workspace=principal.name, role=principal.role.value, token_id=principal.token_id)


class QueryBody(BaseModel):
    sql: str = Field(description="One read-only SELECT over the workspace's views.")
    limit: int = Field(default=1000, ge=1, le=100_000)


class Rows(BaseModel):
    workspace: str
    columns: list[str]
    rows: list[dict[str, Any]]


def _rows(workspace: str, table: Any, limit: int) -> Rows:
    sliced = table.slice(0, limit)
    return Rows(
        workspace=workspace,
        columns=list(sliced.column_names),
        rows=json.loads(json.dumps(sliced.to_pylist(), default=str)),
    )


@read_router.post("/v1/query", response_model=Rows, summary="SQL over the workspace's rows")
async def query(request: Request, body: QueryBody, principal: Reader) -> Rows:
    """Runs ``posttrain query`` scoped to the caller's workspace: every table is a view of
    the workspace's rows only; tables that cannot be scoped are absent."""
    from posttrain.platform.query import run_query

    service: CaptureService = request.app.state.service

    def run() -> Any:
        return run_query(service.open_warehouse(), body.sql, workspace=principal.name)

    return _rows(principal.name, await asyncio.to_thread(run), body.limit)


@read_router.get("/v1/records", response_model=Rows, summary="The workspace's bronze records")
async def records(
    request: Request,
    principal: Reader,
    workspace: str | None = Query(default=None, description="Must be the caller's own."),
    session_id: str | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> Rows:
    """The workspace's rows of ``bronze.records`` (flushed ones), newest first."""
    if workspace is not None:
        principal.require_workspace(workspace)
    from posttrain.platform.query import run_query

    service: CaptureService = request.app.state.service
    sql = "select * from bronze.records"
    if session_id is not None:
        escaped = session_id.replace("'", "''")
        sql += f" where json_extract_string(payload, '$.session_id') = '{escaped}'"
    sql += f" order by ingested_at desc limit {limit}"

    def run() -> Any:
        return run_query(service.open_warehouse(), sql, workspace=principal.name)

    return _rows(principal.name, await asyncio.to_thread(run), limit)


# -- operations ---------------------------------------------------------------------------

ops_router = APIRouter(tags=["operations"])


@ops_router.get("/healthz", summary="Liveness and log state")
async def healthz(request: Request) -> dict[str, Any]:
    service: CaptureService = request.app.state.service
    wal, flusher = service.wal, service.flusher
    return {
        "ok": wal is not None,
        "wal_pending_bytes": wal.pending_bytes if wal else None,
        "flush_error": flusher.last_error if flusher else None,
    }


@ops_router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> str:
    service: CaptureService = request.app.state.service
    lines = []
    counters = dict(service.metrics.counters)
    for name in sorted(counters):
        metric, _, label = name.partition(":")
        labels = f'{{reason="{label}"}}' if label else ""
        lines.append(f"posttrain_{metric}{labels} {counters[name]}")
    if service.wal is not None:
        lines.append(f"posttrain_wal_pending_bytes {service.wal.pending_bytes}")
        lines.append(f"posttrain_wal_groups_total {service.wal.groups}")
    return "\n".join(lines) + "\n"


# -- the app ------------------------------------------------------------------------------


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def create_app(settings: Settings, *, service: CaptureService | None = None) -> FastAPI:
    """The service's FastAPI app; the capture log opens (and replays) at start-up."""
    capture = service or CaptureService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(capture.start)
        try:
            yield
        finally:
            await asyncio.to_thread(capture.stop)

    app = FastAPI(
        title="posttrain serve",
        summary="Live capture of agent sessions into the posttrain warehouse.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = capture
    from posttrain.platform.access import WorkspaceStore as Store

    app.state.store = Store.open(settings.home)

    @app.exception_handler(AccessError)
    async def access_error(request: Request, exc: AccessError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.reason, headers)

    @app.exception_handler(CaptureUnavailable)
    async def unavailable(request: Request, exc: CaptureUnavailable) -> JSONResponse:
        return _error(exc.status, exc.reason, {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(PosttrainError)
    async def posttrain_error(request: Request, exc: PosttrainError) -> JSONResponse:
        return _error(400, str(exc))

    # The dataset viewer, behind the same tokens and workspaces (pages, not an API).
    from posttrain.viewer.access import WorkspaceAccess
    from posttrain.viewer.app import create_viewer_app

    app.mount("/view", create_viewer_app(settings, access=WorkspaceAccess(app.state.store)))
    app.include_router(capture_router)
    app.include_router(read_router)
    app.include_router(ops_router)
    for router in extra_routers(settings):
        app.include_router(router)
    _document_events(app)
    return app


def _document_events(app: FastAPI) -> None:
    """Put the event models in the OpenAPI components (the routes parse bodies themselves,
    to answer per event, so FastAPI would not list them)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        defs = EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["EventBatch"] = defs
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
