"""Shared fixtures: real (temporary) Iceberg warehouses and one Ray runtime per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import postgres, ray_cluster, s3  # noqa: F401  (real services, for any test)

from posttrain.platform.settings import ENV_VARS, SETTINGS_ENV
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """An empty embedded warehouse (SQLite catalog + local folder) in a temp dir."""
    return Warehouse(WarehouseSettings.local(tmp_path / "home"))


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    """A local Ray runtime with 2 CPUs, started once for the whole session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the embedded defaults, whatever POSTTRAIN_* settings the shell exports."""
    for name in (SETTINGS_ENV, *ENV_VARS):
        monkeypatch.delenv(name, raising=False)
