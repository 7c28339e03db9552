"""Fixtures of the experiment tests: a small real warehouse and experiment files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from experiment_data import ExperimentWriter, fill

from posttrain.platform.warehouse import Warehouse, WarehouseSettings


@pytest.fixture
def filled(tmp_path: Path) -> Warehouse:
    """A fresh warehouse holding gold.sft (12 rows) traced to bronze and its licenses."""
    warehouse = Warehouse(WarehouseSettings.local(tmp_path / "home"))
    fill(warehouse)
    return warehouse


@pytest.fixture
def write_experiment(tmp_path: Path) -> ExperimentWriter:
    """Write an experiment file (dedented) and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / "experiments" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write
