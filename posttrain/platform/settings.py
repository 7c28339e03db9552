"""Where posttrain keeps its state on this machine: the warehouse home and its defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from posttrain.platform.config import FrozenConfig

HOME_ENV = "POSTTRAIN_HOME"


def checkout_root() -> Path | None:
    """The repository checkout this package runs from, if it runs from one (editable install)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def project_root() -> Path:
    """The checkout root, or the working directory when installed from a wheel."""
    return checkout_root() or Path.cwd()


def posttrain_home() -> Path:
    """``$POSTTRAIN_HOME``, else ``.posttrain/`` in the project root (gitignored).

    The embedded catalog (``catalog.db``), the warehouse (``warehouse/``) and Dagster's
    storage live here, so deleting this folder resets everything.
    """
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser().resolve() if configured else project_root() / ".posttrain"


class WarehouseSettings(FrozenConfig):
    """How to reach the Iceberg catalog and where table data lives.

    ``catalog_type`` ``sql`` takes a SQLAlchemy URI (SQLite or Postgres); ``rest`` and
    ``glue`` pass ``properties`` through to pyiceberg's ``load_catalog``, which is also
    where S3 credentials and endpoints go (``s3.endpoint``, ``s3.access-key-id``, ...).
    """

    catalog_name: str = "posttrain"
    catalog_type: str = "sql"
    catalog_uri: str | None = None
    warehouse: str
    properties: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def local(cls, home: str | Path | None = None) -> WarehouseSettings:
        """The embedded default: SQLite catalog and local warehouse under ``home``."""
        root = Path(home).resolve() if home is not None else posttrain_home()
        return cls(
            catalog_uri=f"sqlite:///{root / 'catalog.db'}",
            warehouse=(root / "warehouse").as_uri(),
        )

    def catalog_properties(self) -> dict[str, str]:
        props = {"type": self.catalog_type, "warehouse": self.warehouse, **self.properties}
        if self.catalog_uri is not None:
            props["uri"] = self.catalog_uri
        return props
