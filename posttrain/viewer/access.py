"""Who is looking, and what they may do: the viewer's side of workspaces and roles.

The viewer asks an :class:`Access` for the request's :class:`Principal`, then asks
:func:`allowed` before each action and :func:`table_allowed` before each table. Two
implementations ship:

* :class:`LocalAccess` — **local single-user mode** (``posttrain view``): whoever can reach
  the port (127.0.0.1 by default) is the login user with every role. Nothing is checked,
  so never bind it to a shared address.
* :class:`TokenAccess` — bearer tokens (``Authorization: Bearer``, the ``posttrain_token``
  cookie, or ``?token=`` once, which sets the cookie), each mapped to a principal with a
  role and the workspaces it may read. ``posttrain serve`` hands its own access layer in
  through the same protocol.

Roles: ``viewer`` reads and queries; ``curator`` also flags, comments, fixes and drops rows
on review branches, publishes them and generates; ``owner`` (local mode, ``admin`` tokens)
may do everything. A principal limited to workspaces sees only its workspaces' rows (a
``workspace in (...)`` filter pushed into every scan), is refused tables that belong to
another workspace (table property ``posttrain.workspace``) and tables without a
``workspace`` column other than the ``eval.*`` benchmarks; its SQL console is scoped to
its one workspace (``run_query(workspace=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from posttrain.platform.curation import default_curator
from posttrain.platform.errors import PosttrainError

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read", "sql"}),
    "curator": frozenset({"read", "sql", "note", "edit", "generate", "publish"}),
    "owner": frozenset({"read", "sql", "note", "edit", "generate", "publish"}),
}
# posttrain serve's roles (posttrain.platform.access.Role) → the viewer's; a writer token
# (capture only) may not read.
SERVE_ROLES = {"reader": "viewer", "curator": "curator", "admin": "owner"}
WORKSPACE_PROPERTY = "posttrain.workspace"
TOKEN_COOKIE = "posttrain_token"


class AccessDenied(PosttrainError):
    """The principal may not do this (HTTP 403), or is not known (HTTP 401)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """A user, their role, and the workspaces they may read (``None``: all)."""

    name: str
    role: str
    workspaces: frozenset[str] | None = None


class Access(Protocol):
    """Turns a request into the principal making it."""

    def principal(self, request: Request) -> Principal: ...


class LocalAccess:
    """Local single-user mode: the login user, owner of everything."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or default_curator()

    def principal(self, request: Request) -> Principal:
        return Principal(self.name, "owner", None)


class TokenAccess:
    """Bearer tokens mapped to principals."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self.tokens = dict(tokens)

    @staticmethod
    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)

    def principal(self, request: Request) -> Principal:
        token = self.token_of(request)
        if token is None or token not in self.tokens:
            raise AccessDenied("sign in: give a token (Authorization: Bearer, or ?token=)", 401)
        return self.tokens[token]


class WorkspaceAccess:
    """``posttrain serve``'s workspaces and tokens (:mod:`posttrain.platform.access`):
    a token's workspace limits the rows, its role what the viewer lets it do."""

    def __init__(self, store: Any) -> None:
        self.store = store  # a posttrain.platform.access.WorkspaceStore

    def principal(self, request: Request) -> Principal:
        from posttrain.platform.access import AccessError

        self.store.refresh()
        try:
            found = self.store.authenticate(TokenAccess.token_of(request))
        except AccessError as exc:
            raise AccessDenied(exc.reason, exc.status) from None
        role = SERVE_ROLES.get(found.role.value)
        if role is None:
            raise AccessDenied(
                f"token {found.token_id} of workspace {found.name!r} has role "
                f"{found.role.value}, which may not read"
            )
        return Principal(f"{found.name}-{found.token_id}", role, frozenset({found.name}))


def allowed(principal: Principal, action: str) -> None:
    """Raise :class:`AccessDenied` unless the principal's role allows ``action``."""
    if action not in ROLES.get(principal.role, frozenset()):
        raise AccessDenied(f"{principal.name} ({principal.role}) may not {action}")
    if action == "sql" and principal.workspaces is not None and len(principal.workspaces) != 1:
        raise AccessDenied(
            f"{principal.name} reads only workspaces {', '.join(sorted(principal.workspaces))}: "
            "the SQL console is scoped to one workspace"
        )


def table_allowed(
    principal: Principal, name: str, properties: Mapping[str, str], columns: list[str]
) -> None:
    """Raise :class:`AccessDenied` when ``name`` is not the principal's to read."""
    if principal.workspaces is None:
        return
    owner = properties.get(WORKSPACE_PROPERTY)
    if owner is not None:
        if owner not in principal.workspaces:
            raise AccessDenied(f"{name} belongs to workspace {owner!r}, not to {principal.name}")
        return
    if "workspace" in columns or name.startswith("eval."):
        return
    raise AccessDenied(f"{name} is not limited to workspaces, so {principal.name} may not read it")
