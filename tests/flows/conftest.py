"""Fixtures for whole-flow tests: the Dagster assets run against a temporary warehouse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from posttrain.definitions import all_assets
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import RayResource, TokenizerResource, WarehouseResource


def run_assets(
    home: Path,
    *,
    ray: RayResource | None = None,
    selection: Sequence[str] | None = None,
    run_config: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the posttrain assets (all, or a selection) into the warehouse at ``home``."""
    return dg.materialize(
        all_assets,
        selection=selection,
        resources={
            "warehouse": WarehouseResource(home=str(home)),
            "ray": ray or RayResource(mode="in_process"),
            "tokenizer": TokenizerResource(),
        },
        run_config=run_config,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def open_home(home: Path) -> Warehouse:
    return Warehouse(WarehouseSettings.local(home))


@pytest.fixture
def materialize() -> Callable[..., dg.ExecuteInProcessResult]:
    """:func:`run_assets`: materialize posttrain assets into a given warehouse home."""
    return run_assets


@pytest.fixture
def open_warehouse() -> Callable[[Path], Warehouse]:
    """Open the embedded warehouse at a home directory."""
    return open_home


@pytest.fixture(scope="session")
def pipeline_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dg.ExecuteInProcessResult]:
    """The whole SFT pipeline materialized once per session on the shipped samples: the
    warehouse home and the run's result. Tests that use it add no rows to it."""
    home = tmp_path_factory.mktemp("pipeline")
    result = run_assets(home)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return home, result


@pytest.fixture(scope="session")
def pipeline_home(pipeline_run: tuple[Path, dg.ExecuteInProcessResult]) -> Path:
    """The warehouse home of :func:`pipeline_run`."""
    return pipeline_run[0]
