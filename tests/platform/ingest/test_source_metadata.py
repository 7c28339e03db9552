"""Source metadata lives once per source in lineage.sources and is corrected there."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform.errors import ConfigError
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.source_metadata import (
    apply_source_metadata,
    set_source_metadata,
    source_metadata,
)
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.warehouse import Warehouse

QA = {"instruction": "Capital of Peru?", "output": "Lima"}


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(QA) + "\n" + json.dumps({**QA, "output": "Lima."}) + "\n")
    return path


def test_ingest_records_each_source_once(warehouse: Warehouse, qa_file: Path) -> None:
    spec = SourceSpec(path=qa_file, source="qa", workspace="edu", license="CC-BY-4.0")
    first = ingest(warehouse, [spec])
    second = ingest(warehouse, [spec])
    assert (first.sources_updated, second.sources_updated) == (["qa"], [])
    entry = source_metadata(warehouse)["qa"]
    assert (entry.workspace, entry.license) == ("edu", "CC-BY-4.0")
    assert warehouse.info("lineage.sources").rows == 1


def test_one_update_corrects_every_record_without_reingesting(
    warehouse: Warehouse, qa_file: Path
) -> None:
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa", license="MIT")])
    bronze_snapshot = warehouse.snapshot_id("bronze.records")
    set_source_metadata(warehouse, "qa", license="CC-BY-SA-4.0", description="Geography Q&A")
    records = warehouse.read("bronze.records", columns=("record_id", "source", "license"))
    corrected = apply_source_metadata(records, source_metadata(warehouse))
    assert set(corrected["license"].to_pylist()) == {"CC-BY-SA-4.0"}
    assert source_metadata(warehouse)["qa"].description == "Geography Q&A"
    assert warehouse.snapshot_id("bronze.records") == bronze_snapshot  # bronze untouched


def test_a_reingest_with_default_values_keeps_a_correction(
    warehouse: Warehouse, qa_file: Path
) -> None:
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa")])
    set_source_metadata(warehouse, "qa", license="MIT")
    report = ingest(warehouse, [SourceSpec(path=qa_file, source="qa")])
    assert report.sources_updated == []
    assert source_metadata(warehouse)["qa"].license == "MIT"


def test_a_reingest_with_an_explicit_value_updates_it(warehouse: Warehouse, qa_file: Path) -> None:
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa", workspace="edu")])
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa", workspace="public")])
    assert source_metadata(warehouse)["qa"].workspace == "public"
    assert warehouse.info("lineage.sources").rows == 1


def test_setting_an_unknown_source_names_the_known_ones(
    warehouse: Warehouse, qa_file: Path
) -> None:
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa")])
    with pytest.raises(ConfigError, match="no source named 'qs'; known sources: qa"):
        set_source_metadata(warehouse, "qs", license="MIT")


def test_rows_of_unrecorded_sources_keep_their_own_values() -> None:
    rows = pa.table({"source": ["a", "b"], "license": ["x", "y"], "workspace": ["w", "w"]})
    assert apply_source_metadata(rows, {}).equals(rows)


def test_a_source_ingested_before_lineage_sources_can_be_set(
    warehouse: Warehouse, qa_file: Path
) -> None:
    ingest(warehouse, [SourceSpec(path=qa_file, source="qa", workspace="edu")])
    warehouse.table("lineage.sources").delete("source == 'qa'")  # as an older warehouse
    assert source_metadata(warehouse) == {}
    entry = set_source_metadata(warehouse, "qa", license="MIT")
    assert (entry.workspace, entry.license) == ("edu", "MIT")
    assert source_metadata(warehouse)["qa"].license == "MIT"
