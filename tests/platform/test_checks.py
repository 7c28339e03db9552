"""Data checks pass on consistent tables and fail, naming examples, on broken ones."""

from __future__ import annotations

import pyarrow as pa

from posttrain.platform import checks
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES
from posttrain.platform.warehouse import Warehouse


def _write(warehouse: Warehouse, name: str, rows: list[dict[str, object]]) -> None:
    warehouse.overwrite(name, pa.Table.from_pylist(rows, schema=TABLES[name].schema), Lineage("t"))


def _bronze(warehouse: Warehouse, *ids: str) -> None:
    _write(
        warehouse,
        "bronze.records",
        [{"record_id": i, "payload": "{}", "row_index": n} for n, i in enumerate(ids)],
    )


def test_rows_conserved_when_every_bronze_record_is_kept_or_rejected(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a", "b", "c")
    _write(warehouse, "silver.conversations", [{"record_id": "a"}, {"record_id": "b"}])
    _write(warehouse, "silver.rejections", [{"record_id": "c", "reason": "empty"}])
    outcome = checks.rows_conserved(warehouse)
    assert outcome.passed
    assert outcome.description == "bronze 3 = silver 2 + rejections 1"


def test_rows_conserved_fails_naming_the_lost_record(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a", "b", "lost")
    _write(warehouse, "silver.conversations", [{"record_id": "a"}])
    _write(warehouse, "silver.rejections", [{"record_id": "b", "reason": "empty"}])
    outcome = checks.rows_conserved(warehouse)
    assert not outcome.passed
    assert "lost" in outcome.description


def test_rows_conserved_fails_when_a_record_is_both_kept_and_rejected(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a", "b")
    _write(warehouse, "silver.conversations", [{"record_id": "a"}, {"record_id": "b"}])
    _write(warehouse, "silver.rejections", [{"record_id": "b", "reason": "near_dup"}])
    assert not checks.rows_conserved(warehouse).passed


def test_keys_unique_names_a_repeated_key(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a", "dup", "dup")
    outcome = checks.keys_unique(warehouse, "bronze.records")
    assert not outcome.passed
    assert "dup" in outcome.description


def test_duplicates_must_point_to_a_kept_record(warehouse: Warehouse) -> None:
    _write(warehouse, "silver.conversations", [{"record_id": "keeper"}])
    _write(
        warehouse,
        "silver.rejections",
        [
            {"record_id": "b", "reason": "exact_dup", "kept_record_id": "keeper"},
            {"record_id": "c", "reason": "near_dup", "kept_record_id": "gone"},
        ],
    )
    outcome = checks.duplicates_point_to_kept(warehouse)
    assert not outcome.passed
    assert "c" in outcome.description


def test_schema_matches_the_declared_columns(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a")
    assert checks.schema_matches(warehouse, "bronze.records").passed


def test_rate_at_most_reports_the_rate() -> None:
    assert checks.rate_at_most("dups", 1, 10, 0.2).passed
    outcome = checks.rate_at_most("dups", 3, 10, 0.2)
    assert not outcome.passed
    assert "30.00%" in outcome.description


def test_same_records_detects_a_row_lost_between_layers(warehouse: Warehouse) -> None:
    _write(warehouse, "silver.conversations", [{"record_id": "a"}, {"record_id": "b"}])
    _write(warehouse, "gold.sft", [{"record_id": "a"}])
    outcome = checks.same_records(warehouse, "silver.conversations", "gold.sft")
    assert not outcome.passed
    assert "b" in outcome.description


def test_packs_must_fit_and_cover_every_record(warehouse: Warehouse) -> None:
    _write(warehouse, "gold.sft", [{"record_id": "a"}, {"record_id": "b"}])
    _write(
        warehouse,
        "gold.sft_packed",
        [
            {
                "pack_id": 0,
                "input_ids": [1, 2, 3],
                "assistant_masks": [0, 1, 1],
                "seq_lengths": [2, 1],
                "record_ids": ["a", "b"],
                "num_tokens": 3,
            },
        ],
    )
    assert checks.packs_cover_records(warehouse).passed
    assert checks.packs_fit(warehouse, 3).passed
    assert not checks.packs_fit(warehouse, 2).passed


def test_a_record_in_no_pack_fails_unless_it_was_dropped(warehouse: Warehouse) -> None:
    _write(warehouse, "gold.sft", [{"record_id": "a"}, {"record_id": "b"}])
    _write(
        warehouse,
        "gold.sft_packed",
        [
            {
                "pack_id": 0,
                "input_ids": [1],
                "assistant_masks": [1],
                "seq_lengths": [1],
                "record_ids": ["a"],
                "num_tokens": 1,
            },
        ],
    )
    assert not checks.packs_cover_records(warehouse).passed
    assert checks.packs_cover_records(warehouse, dropped=["b"]).passed


def test_rows_conserved_when_nothing_was_rejected(warehouse: Warehouse) -> None:
    _bronze(warehouse, "a")
    _write(warehouse, "silver.conversations", [{"record_id": "a"}])
    _write(warehouse, "silver.rejections", [])
    assert checks.rows_conserved(warehouse).passed
