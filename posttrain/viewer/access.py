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

Roles: ``viewer`` reads; ``curator`` also flags, comments, fixes and drops rows on review
branches and generates; ``owner`` also publishes and runs the SQL console. A principal
limited to workspaces sees only its workspaces' rows (a ``workspace in (...)`` filter
pushed into every scan), is refused tables that belong to another workspace (table
property ``posttrain.workspace``) and tables without a ``workspace`` column other than
the ``eval.*`` benchmarks, and cannot use the SQL console (SQL cannot be row-filtered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from posttrain.platform.curation import default_curator
from posttrain.platform.errors import PosttrainError

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "curator": frozenset({"read", "note", "edit", "generate"}),
    "owner": frozenset({"read", "note", "edit", "generate", "publish", "sql"}),
}
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


def allowed(principal: Principal, action: str) -> None:
    """Raise :class:`AccessDenied` unless the principal's role allows ``action``."""
    if action not in ROLES.get(principal.role, frozenset()):
        raise AccessDenied(f"{principal.name} ({principal.role}) may not {action}")
    if action == "sql" and principal.workspaces is not None:
        raise AccessDenied(
            f"{principal.name} reads only workspaces {', '.join(sorted(principal.workspaces))}: "
            "the SQL console cannot be limited to them"
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
