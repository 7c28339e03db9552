"""Workspaces, API tokens and roles: the one access layer every path goes through.

A workspace is a team or project; its rows carry its name in their ``workspace`` column
(``bronze.records``, ``bronze.outcomes``, silver and gold provenance, ``lineage.sources``).
Workspaces live in one YAML file (``$POSTTRAIN_HOME/workspaces.yaml`` by default), written
by hand or by ``posttrain workspace create|token|revoke|list``::

    workspaces:
      team-a:
        description: support agents
        rules:                       # capture rules, applied before anything is written
          drop_fields: [metadata.user_email, messages.name]
          redact: [email, phone, api_key]   # the silver redactor kinds
          redact_patterns: ['ACME-\\d{6}']
          refuse_sources: [legacy-bot]
        tokens:                      # written by `posttrain workspace token`; hashes only
          - {id: 3f2a9c1b0d4e, role: writer, sha256: 9b1e..., created_at: ...}

A token is ``pt_<id>_<secret>`` with a 256-bit secret; only its SHA-256 is stored, and the
presented token's hash is compared with :func:`hmac.compare_digest` (constant time). A
secret that long needs no slow hash: nobody can enumerate it.

Roles grant permissions: ``writer`` captures, ``reader`` reads its workspace's rows,
``curator`` reads, captures and curates, ``admin`` also manages the workspace's tokens.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError, PosttrainError
from posttrain.platform.silver.detectors import RedactionKind

WORKSPACES_FILE = "workspaces.yaml"
WORKSPACES_ENV = "POSTTRAIN_WORKSPACES"
TOKEN_ENV = "POSTTRAIN_TOKEN"
TOKEN_PREFIX = "pt_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_TOKEN = re.compile(r"^pt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Permission(StrEnum):
    WRITE = "write"  # capture sessions, turns, outcomes
    READ = "read"  # read the workspace's rows
    CURATE = "curate"  # edit on branches, publish
    ADMIN = "admin"  # manage the workspace's tokens


class Role(StrEnum):
    """A token's role; :data:`ROLE_PERMISSIONS` says what each may do."""

    WRITER = "writer"
    READER = "reader"
    CURATOR = "curator"
    ADMIN = "admin"

    def allows(self, permission: Permission | str) -> bool:
        """Whether this role grants ``permission``."""
        return Permission(permission) in ROLE_PERMISSIONS[self]


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.WRITER: frozenset({Permission.WRITE}),
    Role.READER: frozenset({Permission.READ}),
    Role.CURATOR: frozenset({Permission.READ, Permission.WRITE, Permission.CURATE}),
    Role.ADMIN: frozenset(Permission),
}
# A role required by name (``require_role("writer")``) means the permission it stands for.
ROLE_NEEDS: dict[Role, Permission] = {
    Role.WRITER: Permission.WRITE,
    Role.READER: Permission.READ,
    Role.CURATOR: Permission.CURATE,
    Role.ADMIN: Permission.ADMIN,
}


class AccessError(PosttrainError):
    """A request is not allowed; ``status`` is the HTTP answer (401 or 403)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class CaptureRules(FrozenConfig):
    """What a workspace's capture drops, redacts or refuses before anything is written."""

    drop_fields: tuple[str, ...] = ()
    """Dotted paths removed from every event, through lists: ``messages.name``,
    ``metadata.user_email``, ``tools``."""
    redact: tuple[RedactionKind, ...] = ()
    """Silver redactor kinds applied to every text of the event (email, phone, api_key...)."""
    redact_patterns: tuple[str, ...] = ()
    """Regular expressions whose matches become ``<REDACTED>``."""
    refuse_sources: tuple[str, ...] = ()
    """Events from these sources are refused (answered ``refused``, never stored)."""

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact_patterns: {pattern!r} is not a regex: {exc}") from None
        return patterns


class TokenRecord(FrozenConfig):
    """One API token as stored: its id, role and the SHA-256 of the whole token."""

    id: str
    role: Role
    sha256: str
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None


class WorkspaceConfig(FrozenConfig):
    """One workspace as written in the workspaces file."""

    description: str = ""
    rules: CaptureRules = Field(default_factory=CaptureRules)
    tokens: tuple[TokenRecord, ...] = ()


class WorkspacesFile(FrozenConfig):
    workspaces: dict[str, WorkspaceConfig] = Field(default_factory=dict)

    @field_validator("workspaces")
    @classmethod
    def _names_are_simple(cls, value: dict[str, WorkspaceConfig]) -> dict[str, WorkspaceConfig]:
        for name in value:
            check_name(name)
        return value


@dataclass(frozen=True)
class Workspace:
    """A workspace: its name and capture rules."""

    name: str
    rules: CaptureRules
    description: str = ""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the workspace a token belongs to, and the token's role."""

    workspace: Workspace
    role: Role
    token_id: str

    @property
    def name(self) -> str:
        """The workspace's name (what rows carry in their ``workspace`` column)."""
        return self.workspace.name

    def require(self, permission: Permission | str) -> None:
        """Raise 403 unless the role grants ``permission``."""
        if not self.role.allows(permission):
            raise AccessError(
                403,
                f"token {self.token_id} of workspace {self.name!r} has role {self.role.value}, "
                f"which may not {Permission(permission).value}",
            )

    def require_workspace(self, workspace: str) -> None:
        """Raise 403 when ``workspace`` is not the caller's own."""
        if workspace != self.name:
            raise AccessError(
                403,
                f"token {self.token_id} belongs to workspace {self.name!r}, "
                f"not {workspace!r}: a workspace reads only its own rows",
            )


def check_name(name: str) -> str:
    """``name`` if it is a valid workspace name (lower case, digits, ``-``/``_``, ≤ 63)."""
    if not _NAME.match(name):
        raise ConfigError(
            f"workspace name {name!r}: expected lower-case letters, digits, '-' or '_' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


def hash_token(token: str) -> str:
    """SHA-256 of a token, hex (what the workspaces file stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def workspaces_path(home: Path) -> Path:
    """``$POSTTRAIN_WORKSPACES``, else ``<home>/workspaces.yaml``."""
    configured = os.environ.get(WORKSPACES_ENV)
    return Path(configured).expanduser().resolve() if configured else home / WORKSPACES_FILE


def _read(path: Path) -> WorkspacesFile:
    import yaml

    if not path.exists():
        return WorkspacesFile()
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the workspaces file: {exc}") from None
    try:
        return WorkspacesFile.model_validate(loaded)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"{path}: {where}: {error['msg']}") from None


class WorkspaceStore:
    """The workspaces file: read it, check tokens against it, change it under a lock.

    Readers (the service) call :meth:`refresh`, which re-reads the file only when it
    changed, so a token revoked from the CLI stops working within a second.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._data = WorkspacesFile()
        self.refresh()

    @classmethod
    def open(cls, home: Path) -> WorkspaceStore:
        return cls(workspaces_path(home))

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read."""
        stamp = self._file_stamp()
        if stamp != self._stamp or stamp is None:
            self._data = _read(self.path)
            self._stamp = stamp

    @property
    def workspaces(self) -> dict[str, WorkspaceConfig]:
        return dict(self._data.workspaces)

    def workspace(self, name: str) -> Workspace:
        config = self._data.workspaces.get(name)
        if config is None:
            known = ", ".join(sorted(self._data.workspaces)) or "none"
            raise ConfigError(f"{self.path}: no workspace {name!r} (workspaces: {known})")
        return Workspace(name, config.rules, config.description)

    def authenticate(self, token: str | None) -> Principal:
        """The principal a presented token stands for.

        Raises:
            AccessError: 401 with the reason (no token, malformed, unknown, revoked).
        """
        if not token:
            raise AccessError(401, "no API token: send 'Authorization: Bearer pt_...'")
        found = _TOKEN.match(token)
        if not found:
            raise AccessError(401, "malformed API token: expected pt_<12 hex>_<43 characters>")
        token_id = found.group(1)
        presented = hash_token(token)
        for name, config in self._data.workspaces.items():
            for record in config.tokens:
                if record.id != token_id:
                    continue
                if not hmac.compare_digest(presented, record.sha256):
                    raise AccessError(401, f"API token {token_id}: wrong secret")
                if record.revoked_at is not None:
                    raise AccessError(
                        401, f"API token {token_id} was revoked at {record.revoked_at.isoformat()}"
                    )
                return Principal(
                    Workspace(name, config.rules, config.description), record.role, token_id
                )
        raise AccessError(401, f"unknown API token {token_id}")

    # -- changes (CLI) ----------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The file's content as a dict, written back atomically under an exclusive lock."""
        import yaml

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = _read(self.path)
            data = current.model_dump(mode="json")
            yield data
            WorkspacesFile.model_validate(data)  # never write a file the reader refuses
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".workspaces-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                yaml.safe_dump(data, handle, sort_keys=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        self._stamp = None
        self.refresh()

    def create(self, name: str, description: str = "", rules: CaptureRules | None = None) -> None:
        """Add a workspace.

        Raises:
            ConfigError: bad name, or it exists already.
        """
        check_name(name)
        with self._editing() as data:
            if name in data["workspaces"]:
                raise ConfigError(f"{self.path}: workspace {name!r} exists already")
            data["workspaces"][name] = WorkspaceConfig(
                description=description, rules=rules or CaptureRules()
            ).model_dump(mode="json")

    def issue_token(self, workspace: str, role: Role, label: str = "") -> tuple[str, TokenRecord]:
        """A new token for ``workspace``: the token (shown once) and what is stored."""
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            id=token_id,
            role=role,
            sha256=hash_token(token),
            label=label,
            created_at=datetime.now(UTC),
        )
        with self._editing() as data:
            if workspace not in data["workspaces"]:
                known = ", ".join(sorted(data["workspaces"])) or "none"
                raise ConfigError(f"{self.path}: no workspace {workspace!r} (workspaces: {known})")
            data["workspaces"][workspace]["tokens"].append(record.model_dump(mode="json"))
        return token, record

    def revoke(self, token_id: str) -> str:
        """Revoke a token by id (the ``pt_<id>_`` part); returns its workspace.

        Raises:
            ConfigError: no such token.
        """
        token_id = token_id.removeprefix(TOKEN_PREFIX).split("_", 1)[0]
        with self._editing() as data:
            for name, config in data["workspaces"].items():
                for record in config["tokens"]:
                    if record["id"] == token_id:
                        record["revoked_at"] = record["revoked_at"] or datetime.now(UTC).isoformat()
                        return str(name)
            raise ConfigError(f"{self.path}: no token {token_id!r}")


def principal_from_token(home: Path, token: str | None = None) -> Principal | None:
    """The principal of ``token`` (default ``$POSTTRAIN_TOKEN``); ``None`` when none is set.

    The CLI and the Python API call this: with a token, reads are scoped to its workspace.

    Raises:
        AccessError: the token is malformed, unknown or revoked.
    """
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        return None
    return WorkspaceStore.open(home).authenticate(token)


def query_as(token: str, sql: str, *, home: Path | None = None) -> Any:
    """Run one read-only SELECT as the workspace of ``token`` (the Python API of
    ``posttrain query --token``): every table holds only that workspace's rows.

    Returns a ``pyarrow.Table``.

    Raises:
        AccessError: the token is unknown, revoked or may not read.
        QueryError: the SQL is refused or fails.
    """
    from posttrain.platform.query import run_query
    from posttrain.platform.settings import load_settings
    from posttrain.platform.warehouse import Warehouse

    settings = load_settings(home)
    principal = WorkspaceStore.open(settings.home).authenticate(token)
    principal.require(Permission.READ)
    return run_query(Warehouse(settings.warehouse), sql, workspace=principal.name)
