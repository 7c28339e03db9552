"""Where posttrain keeps its state on this machine: the warehouse home and its defaults."""

from __future__ import annotations

import os
from pathlib import Path

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
