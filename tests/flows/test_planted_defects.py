"""Every defect planted in the shipped samples (data/samples/planted.json) is caught by
silver, item by item, for the reason it was planted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from posttrain.platform.warehouse import Warehouse, WarehouseSettings

pytestmark = pytest.mark.slow

PLANTED = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "samples" / "planted.json").read_text()
)["items"]


def _of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [item for item in PLANTED if item["kind"] in kinds]


@pytest.fixture(scope="module")
def silver(pipeline_home: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    warehouse = Warehouse(WarehouseSettings.local(pipeline_home))
    rejections = {row["record_id"]: row for row in warehouse.read("silver.rejections").to_pylist()}
    kept = {
        row["record_id"]: row
        for row in warehouse.read(
            "silver.conversations", columns=("record_id", "messages")
        ).to_pylist()
    }
    return rejections, kept


@pytest.mark.parametrize("item", _of_kind("exact_dup", "near_dup"), ids=lambda i: i["record_id"])
def test_planted_duplicate_pair_keeps_exactly_one(item: dict[str, Any], silver: Any) -> None:
    rejections, kept = silver
    pair = {item["record_id"], item["original"]["record_id"]}
    assert len(pair & kept.keys()) == 1, "exactly one of the pair is kept"
    (dropped,) = pair - kept.keys()
    assert rejections[dropped]["reason"] in ("exact_dup", "near_dup")
    assert rejections[dropped]["kept_record_id"] in pair


@pytest.mark.parametrize("item", _of_kind("contaminated"), ids=lambda i: i["record_id"])
def test_planted_benchmark_item_is_rejected_with_evidence(
    item: dict[str, Any], silver: Any
) -> None:
    rejection = silver[0][item["record_id"]]
    assert rejection["reason"] == "contaminated"
    assert rejection["benchmark"] == item["benchmark"]
    assert rejection["matched_ngrams"] >= 1


@pytest.mark.parametrize(
    "item", _of_kind("malformed", "too_short", "too_long"), ids=lambda i: i["record_id"]
)
def test_planted_bad_record_is_rejected_for_its_reason(item: dict[str, Any], silver: Any) -> None:
    rejection = silver[0][item["record_id"]]
    assert rejection["reason"] == item["expected_reason"]
    assert rejection["detail"]


@pytest.mark.parametrize("item", _of_kind("pii", "secret"), ids=lambda i: i["record_id"])
def test_planted_personal_data_and_secrets_are_redacted(item: dict[str, Any], silver: Any) -> None:
    rejections, kept = silver
    if item["record_id"] not in kept:  # a planted copy may also be a duplicate of another
        assert item["record_id"] in rejections
        return
    text = json.dumps(kept[item["record_id"]]["messages"])
    for value in item["values"]:
        assert value not in text
