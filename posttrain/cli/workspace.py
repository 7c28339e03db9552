"""``posttrain workspace create|token|revoke|list``: workspaces and their API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from posttrain.cli._app import HomeOption, app, console

if TYPE_CHECKING:
    from posttrain.platform.access import WorkspaceStore

workspace_app = typer.Typer(
    help="Workspaces, their API tokens (roles writer, reader, curator, admin) and capture "
    "rules, kept in $POSTTRAIN_HOME/workspaces.yaml.",
    no_args_is_help=True,
)
app.add_typer(workspace_app, name="workspace")


def _store(home: Path | None) -> WorkspaceStore:
    from posttrain.platform.access import WorkspaceStore
    from posttrain.platform.settings import load_settings

    return WorkspaceStore.open(load_settings(home).home)


@workspace_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, - and _.")],
    description: Annotated[str, typer.Option(help="What the workspace is for.")] = "",
    home: HomeOption = None,
) -> None:
    """Add a workspace (its capture rules are edited in the workspaces file)."""
    store = _store(home)
    store.create(name, description)
    console.print(f"workspace {name} created in {store.path}")


@workspace_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The workspace.")],
    role: Annotated[str, typer.Option(help="writer, reader, curator or admin.")] = "writer",
    label: Annotated[str, typer.Option(help="Who or what uses the token.")] = "",
    home: HomeOption = None,
) -> None:
    """Issue an API token; it is printed once (only its hash is stored)."""
    from posttrain.platform.access import Role
    from posttrain.platform.errors import ConfigError

    try:
        chosen = Role(role)
    except ValueError:
        raise ConfigError(f"--role {role!r}: choose writer, reader, curator or admin") from None
    store = _store(home)
    secret, record = store.issue_token(name, chosen, label)
    typer.echo(secret)
    console.print(
        f"token {record.id} ({chosen.value}) for workspace {name}: shown once, store it now",
        style="dim",
    )


@workspace_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (or the whole token).")],
    home: HomeOption = None,
) -> None:
    """Revoke a token; a running service refuses it within a second."""
    store = _store(home)
    workspace = store.revoke(token_id)
    console.print(f"token {token_id} of workspace {workspace} revoked")


@workspace_app.command("list")
def list_workspaces(home: HomeOption = None) -> None:
    """List workspaces, their rules and their tokens (ids and roles, never secrets)."""
    from rich.table import Table

    store = _store(home)
    workspaces = store.workspaces
    if not workspaces:
        console.print(f"No workspaces yet ({store.path}). Run `posttrain workspace create NAME`.")
        return
    table = Table("workspace", "token", "role", "label", "created", "revoked", "rules")
    for name, config in sorted(workspaces.items()):
        rules = config.rules.model_dump(exclude_defaults=True, mode="json")
        rule_text = ", ".join(f"{k}={v}" for k, v in rules.items()) or "-"
        if not config.tokens:
            table.add_row(name, "-", "-", "-", "-", "-", rule_text)
        for record in config.tokens:
            table.add_row(
                name,
                record.id,
                record.role.value,
                record.label or "-",
                record.created_at.strftime("%Y-%m-%d %H:%M"),
                record.revoked_at.strftime("%Y-%m-%d %H:%M") if record.revoked_at else "-",
                rule_text,
            )
    console.print(table)
