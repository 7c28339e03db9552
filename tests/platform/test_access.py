"""Workspaces, tokens and roles: hashed at rest, checked in constant time, scoped reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from posttrain.platform.access import AccessError, Role, WorkspaceStore
from posttrain.platform.errors import ConfigError


def test_tokens_are_stored_only_as_hashes_and_authenticate_to_their_workspace(
    tmp_path: Path,
) -> None:
    store = WorkspaceStore.open(tmp_path)
    store.create("team-a")
    token, record = store.issue_token("team-a", Role.READER)
    text = (tmp_path / "workspaces.yaml").read_text()
    secret = token.split("_", 2)[2]  # urlsafe base64: it may itself hold "_"
    assert len(secret) == 43
    assert token not in text and secret not in text and record.sha256 in text
    principal = WorkspaceStore.open(tmp_path).authenticate(token)
    assert (principal.name, principal.role) == ("team-a", Role.READER)


def test_a_token_with_a_wrong_secret_or_revoked_is_401(tmp_path: Path) -> None:
    store = WorkspaceStore.open(tmp_path)
    store.create("team-a")
    token, record = store.issue_token("team-a", Role.WRITER)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(AccessError, match="wrong secret") as caught:
        store.authenticate(forged)
    assert caught.value.status == 401
    store.revoke(record.id)
    with pytest.raises(AccessError, match="revoked"):
        store.authenticate(token)


def test_roles_grant_what_their_names_say(tmp_path: Path) -> None:
    assert Role.WRITER.allows("write") and not Role.WRITER.allows("read")
    assert Role.READER.allows("read") and not Role.READER.allows("write")
    assert Role.CURATOR.allows("curate") and not Role.CURATOR.allows("admin")
    assert all(Role.ADMIN.allows(p) for p in ("read", "write", "curate", "admin"))


def test_a_bad_workspace_name_or_file_fails_with_the_file_named(tmp_path: Path) -> None:
    store = WorkspaceStore.open(tmp_path)
    with pytest.raises(ConfigError, match="workspace name 'Team A'"):
        store.create("Team A")
    (tmp_path / "workspaces.yaml").write_text("workspaces: {a: {rules: {refuse: [x]}}}")
    with pytest.raises(ConfigError, match=r"workspaces\.yaml: workspaces\.a\.rules\.refuse"):
        WorkspaceStore.open(tmp_path)
