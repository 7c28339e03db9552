"""`posttrain workspace create|token|revoke|list`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from posttrain.cli import app, run
from posttrain.platform.access import WorkspaceStore

runner = CliRunner()


def test_create_token_list_and_revoke_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, ["workspace", "create", "team-a", *home]).exit_code == 0
    result = runner.invoke(app, ["workspace", "token", "team-a", "--role", "reader", *home])
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[0]
    principal = WorkspaceStore.open(tmp_path).authenticate(token)
    listed = runner.invoke(app, ["workspace", "list", *home], env={"COLUMNS": "200"})
    assert principal.token_id in listed.output and token not in listed.output
    assert runner.invoke(app, ["workspace", "revoke", principal.token_id, *home]).exit_code == 0
    assert run(["workspace", "create", "team-a", *home]) == 2
    assert "exists already" in capsys.readouterr().err
    assert run(["workspace", "token", "team-a", "--role", "owner", *home]) == 2
    assert "choose writer, reader, curator or admin" in capsys.readouterr().err


def test_a_revoked_token_cannot_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = WorkspaceStore.open(tmp_path)
    store.create("team-a")
    token, record = store.issue_token("team-a", "reader")  # type: ignore[arg-type]
    store.revoke(record.id)
    assert run(["query", "select 1", "--home", str(tmp_path), "--token", token]) == 2
    assert "revoked" in capsys.readouterr().err
