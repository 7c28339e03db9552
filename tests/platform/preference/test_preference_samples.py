"""The shipped preference samples: every planted defect is refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import load_sources
from posttrain.platform.preference import PreferenceConfig, build_preferences
from posttrain.platform.preference import checks as pref_checks
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[3]
FOLDER = REPO / "data" / "samples" / "preferences"
PLANTED = json.loads((FOLDER / "planted.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    from posttrain.platform.warehouse import WarehouseSettings

    warehouse = Warehouse(WarehouseSettings.local(tmp_path_factory.mktemp("home")))
    seed_humaneval(warehouse)
    specs = load_sources(REPO / "data" / "sources.yaml", base_dir=REPO)
    ingest(warehouse, [spec for spec in specs if FOLDER in Path(spec.path).resolve().parents])
    build_preferences(warehouse, PreferenceConfig(), InProcessExecutor())
    return warehouse


def test_every_planted_defect_is_refused_with_its_reason(built: Warehouse) -> None:
    refused = built.read(
        TableName.SILVER_PREFERENCE_REJECTIONS, columns=("source_uri", "row_index", "reason")
    ).to_pylist()
    found = {(Path(r["source_uri"]).name, r["row_index"], r["reason"]) for r in refused}
    planted = {
        (name, item["line"], item["reason"])
        for name, entry in PLANTED.items()
        for item in entry["planted"]
        if item["reason"] != "duplicate_pair"  # either copy may be the one refused
    }
    assert found - planted == {
        (name, line, reason) for name, line, reason in found if reason == "duplicate_pair"
    }
    assert planted <= found
    assert sum(reason == "duplicate_pair" for *_, reason in found) == 1


def test_the_samples_conserve_records_and_pairs(built: Warehouse) -> None:
    at = built.pin(
        TableName.BRONZE_RECORDS,
        TableName.SILVER_PREFERENCES,
        TableName.SILVER_PREFERENCE_REJECTIONS,
    )
    outcome = pref_checks.preferences_conserved(built, at)
    assert outcome.passed, outcome.description
    assert outcome.metadata["pairs_kept"] == built.info(TableName.SILVER_PREFERENCES).rows
