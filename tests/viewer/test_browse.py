"""Pages, filters, search and histograms read pinned, pushed-down scans."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from posttrain.platform import browse
from posttrain.platform.errors import QueryError
from posttrain.platform.lineage import Lineage
from posttrain.platform.refs import resolve
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse


@pytest.fixture
def many(warehouse: Warehouse) -> Warehouse:
    """bronze.records in three commits (three data files) of 400 rows each."""
    schema = TABLES[TableName.BRONZE_RECORDS].schema
    for part in range(3):
        rows = [
            {
                "record_id": f"r{part * 400 + i:05d}",
                "payload": f"text {i}",
                "row_index": part * 400 + i,
                "source": f"s{i % 3}",
            }
            for i in range(400)
        ]
        warehouse.append(
            TableName.BRONZE_RECORDS, pa.Table.from_pylist(rows, schema=schema), Lineage("test")
        )
    return warehouse


def _all(warehouse: Warehouse) -> list[str]:
    return warehouse.read(TableName.BRONZE_RECORDS)["record_id"].to_pylist()


def test_a_page_at_any_offset_is_that_slice_of_the_table(many: Warehouse) -> None:
    everything = _all(many)
    for offset in (0, 25, 399, 400, 1190):
        page = browse.read_page(many, "bronze.records", offset=offset, limit=25)
        assert [r["record_id"] for r in page.rows] == everything[offset : offset + 25]
        assert page.total == 1200
        assert page.has_more == (offset + 25 < 1200)


def test_a_filtered_page_pages_through_the_matches_only(many: Warehouse) -> None:
    matches = [r for r in many.read(TableName.BRONZE_RECORDS).to_pylist() if r["source"] == "s1"]
    page = browse.read_page(many, "bronze.records", where="source = 's1'", offset=390, limit=20)
    assert [r["record_id"] for r in page.rows] == [r["record_id"] for r in matches[390:410]]
    assert page.total is None


def test_search_finds_text_inside_messages_and_tool_calls(warehouse: Warehouse) -> None:
    from viewer_data import message

    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "needle-in-args"}'},
    }
    rows = [
        {"record_id": "a", "messages": [message("user", "hay"), message("assistant", "hay")]},
        {
            "record_id": "b",
            "messages": [message("user", "a NEEDLE here"), message("assistant", "x")],
        },
        {
            "record_id": "c",
            "messages": [message("user", "hay"), message("assistant", None, tool_calls=[call])],
        },
    ]
    schema = TABLES[TableName.GOLD_SFT].schema
    warehouse.append(TableName.GOLD_SFT, pa.Table.from_pylist(rows, schema=schema), Lineage("t"))
    found = browse.read_page(warehouse, "gold.sft", search="needle")
    assert [r["record_id"] for r in found.rows] == ["b", "c"]


def test_a_bad_filter_is_refused_with_where_it_stopped(many: Warehouse) -> None:
    with pytest.raises(QueryError, match="cannot parse"):
        browse.read_page(many, "bronze.records", where="source = = 's1'")
    with pytest.raises(QueryError, match="nope"):
        browse.read_page(many, "bronze.records", where="nope = 1")


def test_a_histogram_bin_filter_selects_exactly_the_bin(many: Warehouse) -> None:
    pinned = resolve(many, "bronze.records")
    histogram = browse.histogram(pinned, "row_index")
    assert sum(count for _, count, _ in histogram.bins) == 1200
    for _, count, expression in histogram.bins:
        assert expression is not None
        selected = many.read(TableName.BRONZE_RECORDS, row_filter=expression).num_rows
        assert selected == count
    sources = browse.histogram(pinned, "source")
    expected = Counter(many.read(TableName.BRONZE_RECORDS)["source"].to_pylist())
    assert {label: count for label, count, _ in sources.bins} == expected


def test_a_workspace_restriction_is_part_of_the_scan(warehouse: Warehouse) -> None:
    schema = TABLES[TableName.GOLD_SFT].schema
    rows = [{"record_id": f"r{i}", "workspace": "a" if i % 2 else "b"} for i in range(10)]
    warehouse.append(TableName.GOLD_SFT, pa.Table.from_pylist(rows, schema=schema), Lineage("t"))
    pinned = resolve(warehouse, "gold.sft")
    page = browse.page_of(pinned, extra=browse.restrict(pinned, frozenset({"a"})))
    assert {r["workspace"] for r in page.rows} == {"a"} and len(page.rows) == 5
