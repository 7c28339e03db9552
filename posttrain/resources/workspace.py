"""A workspace's view of the warehouse, for assets and ops that act for one workspace.

Reads go through the access layer (:mod:`posttrain.platform.access`): the token names the
workspace and must grant ``read``; every table is scoped to that workspace's rows, exactly
as in ``posttrain query --token`` and the service's ``/v1/query``.
"""

from __future__ import annotations

import os

import dagster as dg
import pyarrow as pa
from pydantic import Field

from posttrain.platform.access import TOKEN_ENV, Permission, Principal, principal_from_token
from posttrain.platform.errors import ConfigError
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse


class WorkspaceReaderResource(dg.ConfigurableResource):
    """Read one workspace's rows (the token's workspace), never another's."""

    home: str | None = Field(default=None, description="Warehouse home; default as the CLI.")
    token: str | None = Field(
        default=None,
        description="Workspace API token (pt_...); None = $POSTTRAIN_TOKEN when used.",
    )

    def principal(self) -> Principal:
        """Who the token stands for (checked at use, so a revoked token stops working)."""
        token = self.token or os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigError(
                f"workspace reader: no token (set the resource's token or {TOKEN_ENV})"
            )
        principal = principal_from_token(load_settings(self.home).home, token)
        assert principal is not None
        principal.require(Permission.READ)
        return principal

    def query(self, sql: str) -> pa.Table:
        """One read-only SELECT over the workspace's views."""
        from posttrain.platform.query import run_query

        principal = self.principal()
        warehouse = Warehouse(load_settings(self.home).warehouse)
        return run_query(warehouse, sql, workspace=principal.name)

    def read(self, table: str) -> pa.Table:
        """The workspace's rows of ``table``.

        Raises:
            ConfigError: the table cannot be scoped to a workspace.
        """
        from posttrain.platform.query import workspace_data

        principal = self.principal()
        warehouse = Warehouse(load_settings(self.home).warehouse)
        rows = workspace_data(warehouse, table, principal.name)
        if rows is None:
            raise ConfigError(f"{table} cannot be scoped to a workspace, so it is not readable")
        return rows
