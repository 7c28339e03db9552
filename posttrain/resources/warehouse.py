"""The Iceberg warehouse as a Dagster resource: embedded by default, remote by config."""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource
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

    ``s3`` (a ``dagster_aws`` :class:`S3Resource`) gives pyiceberg's S3 file IO its
    endpoint, region and credentials when they are Dagster configuration, secrets as
    ``dg.EnvVar``: ``WarehouseResource(s3=S3Resource(aws_secret_access_key=
    dg.EnvVar("LAKE_SECRET"), ...))``. Unset, the settings' ``s3.*`` properties and the
    standard AWS credential chain (``AWS_*`` variables, instance role) apply.
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

    s3: S3Resource | None = Field(
        default=None,
        description="dagster-aws S3 resource whose endpoint, region and credentials the "
        "warehouse's S3 file IO uses; None = the settings and the AWS credential chain.",
    )

    def _s3_properties(self) -> dict[str, str]:
        """pyiceberg ``s3.*`` properties from the fields set on :attr:`s3`."""
        if self.s3 is None:
            return {}
        fields = {
            "s3.endpoint": self.s3.endpoint_url,
            "s3.region": self.s3.region_name,
            "s3.access-key-id": self.s3.aws_access_key_id,
            "s3.secret-access-key": self.s3.aws_secret_access_key,
            "s3.session-token": self.s3.aws_session_token,
        }
        return {key: value for key, value in fields.items() if value}

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
        if self.properties or self.s3 is not None:
            overrides["properties"] = {
                **resolved.properties,
                **self._s3_properties(),
                **self.properties,
            }
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
