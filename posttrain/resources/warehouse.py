"""The Iceberg warehouse as a Dagster resource: embedded by default, remote by config."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, ValidationError

from posttrain.platform.errors import ConfigError
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings


class WarehouseResource(dg.ConfigurableResource):
    """Where the posttrain tables live.

    Unset fields come from :func:`posttrain.platform.settings.load_settings`: the
    ``POSTTRAIN_*`` environment variables, then the settings file
    (``$POSTTRAIN_SETTINGS`` or ``$POSTTRAIN_HOME/posttrain.yaml``), then the embedded
    default (a SQLite catalog and a local warehouse folder under the home). The CLI
    resolves the same way, so both reach the same catalog. A field set here wins; see
    ``deploy/README.md`` for Postgres, REST and S3.
    """

    home: str | None = Field(
        default=None,
        description="Warehouse home; default $POSTTRAIN_HOME or .posttrain/.",
    )
    # str, not the settings' Literal: Dagster's config system cannot express "in-memory".
    catalog_type: str | None = Field(
        default=None, description="sql, rest, glue, ...; None = from the settings."
    )
    catalog_uri: str | None = Field(
        default=None, description="SQLAlchemy URI (sql) or REST endpoint; None = from the settings."
    )
    warehouse: str | None = Field(
        default=None, description="Warehouse location (file:// or s3://); None = from the settings."
    )
    properties: dict[str, str] = Field(
        default_factory=dict,
        description="Extra pyiceberg catalog properties (s3.endpoint, ...), over the settings'.",
    )

    def settings(self) -> WarehouseSettings:
        """The resolved settings with the fields set on this resource laid over them."""
        resolved = load_settings(self.home).warehouse
        overrides: dict[str, object] = {
            key: value
            for key, value in {
                "catalog_type": self.catalog_type,
                "catalog_uri": self.catalog_uri,
                "warehouse": self.warehouse,
            }.items()
            if value is not None
        }
        if self.catalog_type not in (None, resolved.catalog_type) and self.catalog_uri is None:
            overrides["catalog_uri"] = None  # the resolved uri belongs to another catalog type
        if self.properties:
            overrides["properties"] = {**resolved.properties, **self.properties}
        if not overrides:
            return resolved
        try:
            return WarehouseSettings.model_validate(resolved.model_dump() | overrides)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"])
            raise ConfigError(f"warehouse resource: {key}: {error['msg']}") from None

    def open(self) -> Warehouse:
        """Open the catalog (validates the settings before anything is read or written)."""
        return Warehouse(self.settings())
