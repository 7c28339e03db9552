"""The dataset viewer: a Starlette app of server-rendered pages over the warehouse.

``create_viewer_app(settings)`` builds it; ``posttrain view`` serves it alone on
127.0.0.1, and ``posttrain serve`` mounts the same app at ``/view`` (Starlette's
``Mount``, which FastAPI's ``app.mount`` is). Every page's state is in its URL (table,
ref, filter, search, offset), so any view can be shared as a link. All reads go through
:mod:`posttrain.platform.browse` (pinned, filtered, paged scans), the SQL console through
the :mod:`posttrain.platform.query` sandbox, and every edit through
:mod:`posttrain.platform.curation` (write–audit–publish on a review branch).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from posttrain.platform import browse, malformed
from posttrain.platform.errors import PosttrainError
from posttrain.platform.refs import PinnedSnapshot, resolve
from posttrain.platform.settings import Settings, load_settings
from posttrain.platform.warehouse import Warehouse
from posttrain.viewer.access import (
    TOKEN_COOKIE,
    Access,
    AccessDenied,
    LocalAccess,
    Principal,
    allowed,
    table_allowed,
)
from posttrain.viewer.render import pygments_css
from posttrain.viewer.shape import shape_row

HERE = Path(__file__).parent
FLAG_SCAN_ROWS = 50_000
PAGE_SIZES = (10, 25, 50, 100)


class _State:
    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        access: Access,
        checkpoints: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.access = access
        self.checkpoints = dict(checkpoints)


def _state(request: Request) -> _State:
    state: _State = request.app.state.viewer
    return state


def _url(request: Request, path: str, **params: Any) -> str:
    """A link inside the viewer (under the mount point), with the non-empty params."""
    root = request.scope.get("root_path", "")
    query = urlencode({k: v for k, v in params.items() if v not in (None, "", 0)})
    return f"{root}{path}" + (f"?{query}" if query else "")


def _principal(request: Request) -> Principal:
    return _state(request).access.principal(request)


def _pin(request: Request, name: str, ref: str | None, principal: Principal) -> PinnedSnapshot:
    state = _state(request)
    spec = f"{name}@{ref}" if ref and ref != "main" else name
    pinned = resolve(state.warehouse, spec)
    table_allowed(
        principal, name, pinned.table.metadata.properties, pinned.table.schema().column_names
    )
    return pinned


def _render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    context.setdefault("principal", None)
    return templates.TemplateResponse(
        request,
        template,
        {"u": functools.partial(_url, request), **context},
        status_code=status,
    )


def _int(value: str | None, default: int, low: int = 0, high: int = 10**12) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        return default


# -- pages ------------------------------------------------------------------------------


def index(request: Request) -> Response:
    principal = _principal(request)
    state = _state(request)
    tables = []
    for name in state.warehouse.table_names():
        loaded = state.warehouse.table(name)
        try:
            table_allowed(principal, name, loaded.metadata.properties, loaded.schema().column_names)
        except AccessDenied:
            continue
        snapshot = loaded.current_snapshot()
        summary = snapshot.summary if snapshot is not None else None
        rows = int(summary.get("total-records", 0)) if summary is not None else 0
        refs = sorted(r for r in loaded.metadata.refs if r != "main")
        tables.append(
            {
                "name": name,
                "rows": rows,
                "snapshot": snapshot.snapshot_id if snapshot else None,
                "refs": refs,
            }
        )
    return _render(request, "index.html", tables=tables, principal=principal)


def table_page(request: Request) -> Response:
    principal = _principal(request)
    allowed(principal, "read")
    name = request.path_params["name"]
    params = request.query_params
    ref = params.get("ref") or None
    where = params.get("where") or None
    search = params.get("q") or None
    flagged = params.get("flagged") or None
    offset = _int(params.get("offset"), 0)
    limit = _int(params.get("limit"), 25, 1, browse.MAX_LIMIT)
    pinned = _pin(request, name, ref, principal)
    started = time.perf_counter()
    keep = _flag_filter(flagged)
    page = browse.page_of(
        pinned,
        where=where,
        search=search,
        offset=offset,
        limit=limit,
        extra=browse.restrict(pinned, principal.workspaces),
        keep=keep,
    )
    seconds = time.perf_counter() - started
    key_columns = browse.key_columns(name)
    notes = _notes(request, name, ref or "main")
    rows = []
    for row in page.rows:
        key = _key_text(row, key_columns)
        shown = shape_row(row, key, limit=1500)
        rows.append((shown, notes.get(key or "", [])))
    return _render(
        request,
        "table.html",
        principal=principal,
        name=name,
        ref=ref or "main",
        pinned=pinned,
        page=page,
        rows=rows,
        where=where or "",
        q=search or "",
        flagged=flagged or "",
        offset=offset,
        limit=limit,
        seconds=seconds,
        hist_columns=browse.histogram_columns(pinned),
        refs=_ref_choices(request, pinned),
        key_columns=key_columns,
        flag_kinds=malformed.KINDS,
        page_sizes=PAGE_SIZES,
    )


def _flag_filter(kind: str | None) -> Any:
    if not kind:
        return None

    def keep(row: dict[str, Any]) -> bool:
        return any(kind in ("any", f.kind) for f in malformed.row_flags(row))

    return keep


def _key_text(row: Mapping[str, Any], key_columns: tuple[str, ...]) -> str | None:
    if not key_columns or any(c not in row for c in key_columns):
        return None
    return "|".join(str(row[c]) for c in key_columns)


def _key_values(key: str, key_columns: tuple[str, ...]) -> dict[str, str]:
    parts = key.split("|", len(key_columns) - 1)
    if len(parts) != len(key_columns):
        raise HTTPException(400, f"key {key!r} does not name {', '.join(key_columns)}")
    return dict(zip(key_columns, parts, strict=True))


def _ref_choices(request: Request, pinned: PinnedSnapshot) -> list[tuple[str, str]]:
    from pyiceberg.table.refs import SnapshotRefType

    from posttrain.platform.versions import versions

    choices = [("main", "main")]
    for ref_name, ref in sorted(pinned.table.metadata.refs.items()):
        if ref_name == "main":
            continue
        kind = "branch" if ref.snapshot_ref_type == SnapshotRefType.BRANCH else "tag"
        choices.append((ref_name, f"{kind} {ref_name}"))
    known = {c[0] for c in choices}
    for version in versions(_state(request).warehouse):
        if pinned.name in version.snapshots and version.version:
            name = f"{version.corpus}/{version.version}"
            if name not in known:
                choices.append((name, f"version {name}"))
                known.add(name)
    return choices


def _notes(request: Request, name: str, ref: str) -> dict[str, list[dict[str, Any]]]:
    from posttrain.platform.notes import notes_for

    return notes_for(_state(request).warehouse, name, ref)


def _one_row(
    request: Request, name: str, ref: str | None, key: str, principal: Principal
) -> tuple[PinnedSnapshot, dict[str, Any]]:
    pinned = _pin(request, name, ref, principal)
    key_columns = browse.key_columns(name)
    if not key_columns:
        raise HTTPException(404, f"{name} has no key: open its rows from the table page")
    expression = browse.key_filter(pinned, _key_values(key, key_columns))
    restriction = browse.restrict(pinned, principal.workspaces)
    if restriction is not None:
        from pyiceberg.expressions import And

        expression = And(expression, restriction)
    page = browse.page_of(pinned, limit=1, extra=expression)
    if not page.rows:
        raise HTTPException(404, f"{name}@{ref or 'main'} has no row {key!r}")
    return pinned, page.rows[0]


def row_page(request: Request) -> Response:
    principal = _principal(request)
    allowed(principal, "read")
    name = request.path_params["name"]
    params = request.query_params
    ref = params.get("ref") or None
    key = params.get("key") or ""
    full = params.get("full") == "1"
    pinned, row = _one_row(request, name, ref, key, principal)
    shown = shape_row(row, key, limit=10**9 if full else 20_000)
    notes = _notes(request, name, ref or "main").get(key, [])
    return _render(
        request,
        "row.html",
        principal=principal,
        name=name,
        ref=ref or "main",
        key=key,
        pinned=pinned,
        row=shown,
        notes=notes,
        full=full,
        checkpoints=_state(request).checkpoints,
        branch=params.get("branch") or f"review-{principal.name}",
        editable=[
            c
            for c in row
            if c not in browse.key_columns(name)
            and isinstance(row[c], str | int | float | type(None))
        ],
        message=params.get("message") or "",
    )


def histogram_fragment(request: Request) -> Response:
    principal = _principal(request)
    name = request.path_params["name"]
    params = request.query_params
    pinned = _pin(request, name, params.get("ref") or None, principal)
    column = params.get("col") or ""
    hist = browse.histogram(pinned, column, params.get("where") or None, principal.workspaces)
    peak = max((count for _, count, _ in hist.bins), default=1) or 1
    return _render(
        request,
        "_histogram.html",
        hist=hist,
        peak=peak,
        name=name,
        ref=params.get("ref") or "",
        where=params.get("where") or "",
        q=params.get("q") or "",
    )


@functools.lru_cache(maxsize=128)
def _flag_counts(
    table_uuid: str,
    snapshot_id: int,
    workspaces: tuple[str, ...] | None,
    holder: browse.Unkeyed[PinnedSnapshot],
) -> malformed.FlagCounts:
    pinned: PinnedSnapshot = holder.value
    columns = malformed.message_columns(pinned.table.schema().column_names)
    if not columns:
        return malformed.FlagCounts({}, 0, True)
    restriction = browse.restrict(pinned, None if workspaces is None else frozenset(workspaces))
    from pyiceberg.expressions import AlwaysTrue

    scan = pinned.table.scan(
        row_filter=restriction if restriction is not None else AlwaysTrue(),
        selected_fields=tuple(columns),
        snapshot_id=pinned.snapshot_id,
    )

    def rows() -> Any:
        for batch in scan.to_arrow_batch_reader():
            yield from batch.to_pylist()

    return malformed.count_flags(rows(), FLAG_SCAN_ROWS)


def _counts(pinned: PinnedSnapshot, principal: Principal) -> malformed.FlagCounts:
    """The malformed-content counts of a snapshot as ``principal`` may see it (cached)."""
    return _flag_counts(
        str(pinned.table.metadata.table_uuid),
        pinned.snapshot_id,
        None if principal.workspaces is None else tuple(sorted(principal.workspaces)),
        browse.Unkeyed(pinned),
    )


def flags_fragment(request: Request) -> Response:
    principal = _principal(request)
    name = request.path_params["name"]
    ref = request.query_params.get("ref") or None
    counts = _counts(_pin(request, name, ref, principal), principal)
    return _render(request, "_flags.html", counts=counts, name=name, ref=ref or "")


def flags_page(request: Request) -> Response:
    """Malformed-content counts of every table with message columns."""
    principal = _principal(request)
    state = _state(request)
    results = []
    for name in state.warehouse.table_names():
        loaded = state.warehouse.table(name)
        if not malformed.message_columns(loaded.schema().column_names):
            continue
        try:
            pinned = _pin(request, name, None, principal)
        except (AccessDenied, PosttrainError):
            continue
        results.append((name, _counts(pinned, principal)))
    return _render(
        request, "flags.html", principal=principal, results=results, kinds=malformed.KINDS
    )


def lineage_page(request: Request) -> Response:
    from posttrain.platform.row_lineage import trace_row

    principal = _principal(request)
    name = request.path_params["name"]
    ref = request.query_params.get("ref") or None
    key = request.query_params.get("key") or ""
    _, row = _one_row(request, name, ref, key, principal)
    key_columns = browse.key_columns(name)
    trace = trace_row(_state(request).warehouse, name, key_columns[0], key, row)
    return _render(
        request,
        "lineage.html",
        principal=principal,
        name=name,
        ref=ref or "main",
        key=key,
        trace=trace,
    )


def diff_page(request: Request) -> Response:
    from posttrain.platform.row_diff import diff_rows

    principal = _principal(request)
    allowed(principal, "read")
    if principal.workspaces is not None:
        raise AccessDenied("a diff reads whole snapshots: not for a workspace-limited user")
    name = request.path_params["name"]
    params = request.query_params
    old_ref = params.get("old") or ""
    new_ref = params.get("new") or "main"
    kind = params.get("kind") or "changed"
    offset = _int(params.get("offset"), 0)
    main = _pin(request, name, None, principal)
    choices = _ref_choices(request, main)
    snapshots = [(s.snapshot_id, s.timestamp_ms) for s in main.table.snapshots()][-30:]
    result = None
    if old_ref:
        old = _pin(request, name, old_ref, principal)
        new = _pin(request, name, new_ref, principal)
        result = diff_rows(
            _state(request).warehouse,
            name,
            old.snapshot_id,
            new.snapshot_id,
            kind=kind,
            offset=offset,
            limit=20,
        )
    shaped = []
    for change in result.rows if result else []:
        shaped.append(
            (
                change,
                shape_row(change.old, change.key, 1500) if change.old else None,
                shape_row(change.new, change.key, 1500) if change.new else None,
            )
        )
    return _render(
        request,
        "diff.html",
        principal=principal,
        name=name,
        old=old_ref,
        new=new_ref,
        kind=kind,
        offset=offset,
        result=result,
        shaped=shaped,
        choices=choices,
        snapshots=snapshots,
    )


def sql_page(request: Request) -> Response:
    from posttrain.platform.query import run_query

    principal = _principal(request)
    allowed(principal, "sql")
    sql = request.query_params.get("q") or ""
    columns: list[str] = []
    rows: list[list[Any]] = []
    error = ""
    seconds = 0.0
    if sql.strip():
        started = time.perf_counter()
        try:
            scope = sorted(principal.workspaces)[0] if principal.workspaces else None
            result = run_query(_state(request).warehouse, sql, workspace=scope)
            columns = result.column_names
            rows = [[_cell(v) for v in r.values()] for r in result.slice(0, 500).to_pylist()]
        except PosttrainError as exc:
            error = str(exc)
        seconds = time.perf_counter() - started
    return _render(
        request,
        "sql.html",
        principal=principal,
        sql=sql,
        columns=columns,
        rows=rows,
        error=error,
        seconds=seconds,
    )


def _cell(value: Any) -> str:
    from posttrain.viewer.render import cut, json_text

    text = value if isinstance(value, str) else json_text(value)
    return cut(text, 300)[0]


def style(request: Request) -> Response:
    return Response(request.app.state.css, media_type="text/css")


# -- errors -----------------------------------------------------------------------------


async def _error(request: Request, exc: Exception) -> Response:
    status = 500
    if isinstance(exc, AccessDenied):
        status = exc.status
    elif isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, PosttrainError):
        status = 400 if "no table" not in str(exc).lower() else 404
        from posttrain.platform.errors import SnapshotNotFoundError, TableNotFoundError

        if isinstance(exc, TableNotFoundError | SnapshotNotFoundError):
            status = 404
    message = str(getattr(exc, "detail", None) or exc)
    return _render(request, "error.html", status=status, message=message, code=status)


class _CsrfCookie:
    """ASGI middleware: every visitor gets a random form token in a cookie, and a
    ``?token=`` sign-in is kept as a cookie (then links need not carry it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get("posttrain_csrf") or secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csrf"] = token
        sign_in = request.query_params.get("token")
        cookies = (
            []
            if request.cookies.get("posttrain_csrf")
            else [f"posttrain_csrf={token}; Path=/; SameSite=Strict; HttpOnly"]
        )
        if sign_in:
            cookies.append(f"{TOKEN_COOKIE}={sign_in}; Path=/; SameSite=Strict; HttpOnly")

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for cookie in cookies:
                    headers.append((b"set-cookie", cookie.encode()))
                headers.append(
                    (
                        b"content-security-policy",
                        b"default-src 'self'; script-src 'self'; style-src 'self'; "
                        b"img-src 'self' data:; object-src 'none'; base-uri 'none'",
                    )
                )
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def create_viewer_app(
    settings: Settings | None = None,
    *,
    warehouse: Warehouse | None = None,
    access: Access | None = None,
    checkpoints: Mapping[str, str] | None = None,
) -> Starlette:
    """The viewer as an ASGI app.

    Args:
        settings: where the warehouse is and the viewer's settings (default:
            :func:`posttrain.platform.settings.load_settings`).
        warehouse: an open warehouse to read (default: opened from ``settings``).
        access: who the requests come from (default: :class:`LocalAccess`, local
            single-user mode).
        checkpoints: name → checkpoint id offered for generation (default: the
            ``viewer.checkpoints`` setting).
    """
    settings = settings or load_settings()
    warehouse = warehouse or Warehouse(settings.warehouse)
    from posttrain.viewer.actions import curate, generate, vibe

    routes = [
        Route("/", index),
        Route("/flags", flags_page),
        Route("/sql", sql_page),
        Route("/vibe", vibe, methods=["GET", "POST"]),
        Route("/generate", generate, methods=["POST"]),
        Route("/style.css", style),
        Route("/t/{name}", table_page),
        Route("/t/{name}/row", row_page),
        Route("/t/{name}/hist", histogram_fragment),
        Route("/t/{name}/flags", flags_fragment),
        Route("/t/{name}/lineage", lineage_page),
        Route("/t/{name}/diff", diff_page),
        Route("/t/{name}/curate", curate, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    # PosttrainError (AccessDenied among them) and HTTPException are the user's errors:
    # a page with the one-line message and its status, no traceback in the log.
    app = Starlette(
        routes=routes, exception_handlers={PosttrainError: _error, HTTPException: _error}
    )
    app.state.viewer = _State(
        settings,
        warehouse,
        access or LocalAccess(),
        checkpoints if checkpoints is not None else settings.viewer.checkpoints,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["csrf"] = lambda request: request.scope.get("state", {}).get("csrf", "")
    templates.env.filters["safe_markup"] = Markup
    app.state.templates = templates
    app.state.css = (HERE / "static" / "viewer.css").read_text() + "\n" + pygments_css()
    app.add_middleware(_CsrfCookie)
    with contextlib.suppress(Exception):
        warehouse.table_names()  # fail early on a catalog that cannot be reached
    return app
