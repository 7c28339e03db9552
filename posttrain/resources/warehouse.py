"""The Iceberg warehouse as a Dagster resource: embedded by default, remote by config."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from posttrain.platform.warehouse import Warehouse, WarehouseSettings


class WarehouseResource(dg.ConfigurableResource):
    """Where the posttrain tables live.

    With nothing configured this is the embedded default: a SQLite catalog and a local
    warehouse folder under ``$POSTTRAIN_HOME`` (``.posttrain/`` in the project). Set
    ``catalog_uri`` to a Postgres URI, or ``catalog_type`` to ``rest``/``glue``, and
    ``warehouse`` to an ``s3://`` location (with S3 settings in ``properties``) to scale out;
    see ``deploy/README.md``.
    """

    home: str | None = Field(
        default=None,
        description="Embedded warehouse home; default $POSTTRAIN_HOME or .posttrain/.",
    )
    catalog_type: str = Field(default="sql", description="sql, rest or glue.")
    catalog_uri: str | None = Field(
        default=None, description="SQLAlchemy URI (sql) or REST endpoint; None = embedded."
    )
    warehouse: str | None = Field(
        default=None, description="Warehouse location (file:// or s3://); None = embedded."
    )
    properties: dict[str, str] = Field(
        default_factory=dict, description="Extra pyiceberg catalog properties (s3.endpoint, ...)."
    )

    def settings(self) -> WarehouseSettings:
        """The platform settings this resource stands for."""
        if self.catalog_uri is None and self.warehouse is None and self.catalog_type == "sql":
            return WarehouseSettings.local(self.home)
        local = WarehouseSettings.local(self.home)
        return WarehouseSettings(
            catalog_type=self.catalog_type,
            catalog_uri=self.catalog_uri if self.catalog_uri is not None else local.catalog_uri,
            warehouse=self.warehouse or local.warehouse,
            properties=self.properties,
        )

    def open(self) -> Warehouse:
        """Open the catalog (validates the settings before anything is read or written)."""
        return Warehouse(self.settings())
