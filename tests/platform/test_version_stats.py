"""What a version holds and what changed between two versions, by key."""

from __future__ import annotations

from collections import Counter

from versions_data import build

from posttrain.platform import versions as v
from posttrain.platform.version_stats import diff_versions, version_summary
from posttrain.platform.warehouse import Warehouse


def test_summary_counts_rows_by_source_license_and_reason(warehouse: Warehouse) -> None:
    build(warehouse, range(3), rejected=range(3, 5))
    build(warehouse, range(5, 6), source="forum", license="CC-BY-4.0")
    summary = version_summary(warehouse, v.create_version(warehouse, "sft", "v1"))
    assert summary["gold.sft"].rows == 4
    assert summary["gold.sft"].by["source"] == Counter({"web": 3, "forum": 1})
    assert summary["gold.sft"].by["license"] == Counter({"MIT": 3, "CC-BY-4.0": 1})
    assert summary["silver.rejections"].by["reason"] == Counter({"empty": 2})
    assert summary["gold.sft_packed"].rows == 0


def test_diff_counts_rows_added_and_removed_by_key(warehouse: Warehouse) -> None:
    build(warehouse, range(4))
    old = v.create_version(warehouse, "sft", "v1")
    build(warehouse, range(4, 6), source="forum", license="CC-BY-4.0", rejected=range(6, 7))
    warehouse.table("gold.sft").delete("record_id = 'r0'")
    new = v.create_version(warehouse, "sft", "v2")
    by_table = {d.table: d for d in diff_versions(warehouse, old, new)}
    gold = by_table["gold.sft"]
    assert (gold.added.rows, gold.removed.rows) == (2, 1)
    assert gold.added.by["source"] == Counter({"forum": 2})
    assert gold.added.by["license"] == Counter({"CC-BY-4.0": 2})
    assert gold.removed.by["source"] == Counter({"web": 1})
    assert by_table["silver.rejections"].added.by["reason"] == Counter({"empty": 1})
    assert by_table["gold.sft_packed"].added.rows == 0


def test_a_version_diffed_with_itself_changes_nothing(warehouse: Warehouse) -> None:
    build(warehouse, range(3))
    one = v.create_version(warehouse, "sft", "v1")
    assert all(d.added.rows == d.removed.rows == 0 for d in diff_versions(warehouse, one, one))
