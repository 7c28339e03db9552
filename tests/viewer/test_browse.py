"""Pages, filters, search and histograms read pinned, pushed-down scans."""

from __future__ import annotations

import urllib.request
from collections import Counter
from pathlib import Path

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


@pytest.fixture
def grouped(warehouse: Warehouse) -> Warehouse:
    """bronze.records: 1,200 rows in three files of four 100-row row groups each."""
    table = warehouse.ensure_table(TableName.BRONZE_RECORDS)
    with table.transaction() as transaction:
        transaction.set_properties({"write.parquet.row-group-limit": "100"})
    schema = TABLES[TableName.BRONZE_RECORDS].schema
    for part in range(3):
        rows = [
            {"record_id": f"r{i:05d}", "row_index": i, "source": f"s{i % 3}"}
            for i in range(part * 400, part * 400 + 400)
        ]
        warehouse.append(
            TableName.BRONZE_RECORDS, pa.Table.from_pylist(rows, schema=schema), Lineage("test")
        )
    return warehouse


def test_a_histogram_of_a_large_table_counts_an_evenly_spaced_sample_and_says_so(
    grouped: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "HISTOGRAM_EXACT_ROWS", 400)
    monkeypatch.setattr(browse, "HISTOGRAM_SAMPLE_ROWS", 300)
    pinned = resolve(grouped, "bronze.records")
    sources = browse.histogram(pinned, "source")
    assert sources.sample == browse.Sample(rows=300, of_rows=1200, row_groups=3, of_row_groups=12)
    # Row groups 2, 6 and 10 of 12: one from each third of the table.
    sampled = [r for r in range(1200) if r // 100 in (2, 6, 10)]
    assert {label: count for label, count, _ in sources.bins} == Counter(
        f"s{r % 3}" for r in sampled
    )
    assert sources.rows == 300 and sources.sample.estimate(sources.rows) == 1200
    indexes = browse.histogram(pinned, "row_index")
    assert indexes.sample is not None and indexes.bins[0][0].startswith("200")


def test_message_length_and_turns_histograms_are_sampled_on_a_large_table(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from viewer_data import message

    table = warehouse.ensure_table(TableName.GOLD_SFT)
    with table.transaction() as transaction:
        transaction.set_properties({"write.parquet.row-group-limit": "10"})
    rows = [
        {"record_id": f"r{i:03d}", "messages": [message("user", "x" * i)] * (1 + i // 40)}
        for i in range(80)
    ]
    schema = TABLES[TableName.GOLD_SFT].schema
    warehouse.append(TableName.GOLD_SFT, pa.Table.from_pylist(rows, schema=schema), Lineage("t"))
    monkeypatch.setattr(browse, "HISTOGRAM_EXACT_ROWS", 40)
    monkeypatch.setattr(browse, "HISTOGRAM_SAMPLE_ROWS", 20)
    pinned = resolve(warehouse, "gold.sft")
    turns = browse.histogram(pinned, "turns")
    # Row groups 2 and 6 of 8: rows 20-29 (one message each) and 60-69 (two each).
    assert turns.sample == browse.Sample(rows=20, of_rows=80, row_groups=2, of_row_groups=8)
    assert sum(count for _, count, _ in turns.bins) == 20
    length = browse.histogram(pinned, "length")
    assert length.sample is not None and length.rows == 20
    # Characters per row: 20-29 (one message of i), 120-138 (two of i).
    assert length.bins[0][0].startswith("20–") and length.bins[-1][0].endswith("–138")


def test_a_histogram_is_exact_when_the_filter_leaves_few_enough_row_groups(
    grouped: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "HISTOGRAM_EXACT_ROWS", 400)
    monkeypatch.setattr(browse, "HISTOGRAM_SAMPLE_ROWS", 300)
    pinned = resolve(grouped, "bronze.records")
    # Statistics rule out every row group below 950: 300 rows are left, all counted.
    sources = browse.histogram(pinned, "source", "row_index >= 950")
    assert sources.sample is None
    assert {label: count for label, count, _ in sources.bins} == Counter(
        f"s{r % 3}" for r in range(950, 1200)
    )


def test_a_histogram_of_a_table_within_the_limit_is_exact(grouped: Warehouse) -> None:
    pinned = resolve(grouped, "bronze.records")
    histogram = browse.histogram(pinned, "row_index", "source = 's1'")
    assert histogram.sample is None and histogram.rows == 400
    assert sum(count for _, count, _ in histogram.bins) == 400


def test_the_histogram_fragment_labels_a_sample_as_an_estimate(
    grouped: Warehouse, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from viewer_server import ServerThread

    from posttrain.platform.settings import load_settings
    from posttrain.viewer.app import create_viewer_app

    monkeypatch.setattr(browse, "HISTOGRAM_EXACT_ROWS", 400)
    monkeypatch.setattr(browse, "HISTOGRAM_SAMPLE_ROWS", 300)
    app = create_viewer_app(load_settings(tmp_path / "home"), warehouse=grouped, checkpoints={})
    with ServerThread(app) as server:
        url = f"{server.url}/t/bronze.records/hist?col=source"
        with urllib.request.urlopen(url, timeout=60) as response:
            html = response.read().decode()
    assert "300 rows in a sample" in html
    assert "Estimate: sample of 300 of 1,200 rows (3 of 12 row groups" in html
    assert "about 1,200 rows match" in html


@pytest.mark.parametrize(
    "where", ["source = 's1'", "source != 's1'", "source is null", "source in ('s0', 's2')"]
)
def test_a_deep_filtered_page_on_a_text_column_is_that_slice_of_the_matches(
    warehouse: Warehouse, where: str
) -> None:
    # Row groups large enough for Parquet's dictionary of a few values to be counted on.
    table = warehouse.ensure_table(TableName.BRONZE_RECORDS)
    with table.transaction() as transaction:
        transaction.set_properties({"write.parquet.row-group-limit": "1000"})
    schema = TABLES[TableName.BRONZE_RECORDS].schema
    for part in range(2):
        rows = [
            {
                "record_id": f"r{i:05d}",
                "row_index": i,
                "source": None if i % 7 == 0 else f"s{i % 3}",
            }
            for i in range(part * 3000, part * 3000 + 3000)
        ]
        # Row groups of nulls only, of one value only, and mixed ones.
        rows[:1000] = [{**row, "source": None} for row in rows[:1000]]
        rows[1000:2000] = [{**row, "source": "s1"} for row in rows[1000:2000]]
        warehouse.append(
            TableName.BRONZE_RECORDS, pa.Table.from_pylist(rows, schema=schema), Lineage("t")
        )
    expected = warehouse.read(TableName.BRONZE_RECORDS, row_filter=where)["record_id"].to_pylist()
    assert expected
    for offset in (0, len(expected) // 2, max(0, len(expected) - 3)):
        page = browse.read_page(warehouse, "bronze.records", where=where, offset=offset, limit=10)
        assert [r["record_id"] for r in page.rows] == expected[offset : offset + 10]


def test_a_workspace_restriction_is_part_of_the_scan(warehouse: Warehouse) -> None:
    schema = TABLES[TableName.GOLD_SFT].schema
    rows = [{"record_id": f"r{i}", "workspace": "a" if i % 2 else "b"} for i in range(10)]
    warehouse.append(TableName.GOLD_SFT, pa.Table.from_pylist(rows, schema=schema), Lineage("t"))
    pinned = resolve(warehouse, "gold.sft")
    page = browse.page_of(pinned, extra=browse.restrict(pinned, frozenset({"a"})))
    assert {r["workspace"] for r in page.rows} == {"a"} and len(page.rows) == 5


def _records(start: int, count: int) -> pa.Table:
    rows = [
        {"record_id": f"r{i:05d}", "row_index": i, "source": f"s{i % 3}"}
        for i in range(start, start + count)
    ]
    return pa.Table.from_pylist(rows, schema=TABLES[TableName.BRONZE_RECORDS].schema)


@pytest.fixture
def small_groups(warehouse: Warehouse) -> Warehouse:
    """bronze.records in two files (50 and 45 rows) written in row groups of 7 rows."""
    table = warehouse.ensure_table(TableName.BRONZE_RECORDS)
    with table.transaction() as transaction:
        transaction.set_properties({"write.parquet.row-group-limit": "7"})
    warehouse.append(TableName.BRONZE_RECORDS, _records(0, 50), Lineage("test"))
    warehouse.append(TableName.BRONZE_RECORDS, _records(50, 45), Lineage("test"))
    return warehouse


def test_a_page_across_row_groups_and_files_is_that_slice_of_the_table(
    small_groups: Warehouse,
) -> None:
    everything = _all(small_groups)
    assert len(everything) == 95
    for offset in (0, 6, 7, 13, 45, 49, 50, 56, 90, 94, 95, 500):
        for limit in (1, 5, 20):
            page = browse.read_page(small_groups, "bronze.records", offset=offset, limit=limit)
            assert [r["record_id"] for r in page.rows] == everything[offset : offset + limit]
            assert page.has_more == (offset + limit < 95)


def test_a_pinned_page_stays_on_its_snapshot_after_later_commits(
    small_groups: Warehouse,
) -> None:
    before = resolve(small_groups, "bronze.records")
    first = browse.page_of(before, offset=90, limit=10)
    small_groups.append(TableName.BRONZE_RECORDS, _records(95, 10), Lineage("test"))
    assert browse.page_of(before, offset=90, limit=10).rows == first.rows
    after = browse.read_page(small_groups, "bronze.records", offset=90, limit=10)
    assert [r["record_id"] for r in after.rows] == _all(small_groups)[90:100]
    assert after.total == 105 and after.rows != first.rows


def test_a_filter_on_a_column_not_shown_still_filters(small_groups: Warehouse) -> None:
    page = browse.read_page(
        small_groups, "bronze.records", where="source = 's1'", columns=["record_id"], limit=40
    )
    expected = {f"r{i:05d}" for i in range(1, 95, 3)}
    assert [list(row) for row in page.rows] == [["record_id"]] * len(expected)
    assert {row["record_id"] for row in page.rows} == expected


def test_new_tables_are_written_in_small_row_groups(warehouse: Warehouse) -> None:
    import pyarrow.parquet as pq

    warehouse.append(TableName.BRONZE_RECORDS, _records(0, 20_000), Lineage("test"))
    table = warehouse.table(TableName.BRONZE_RECORDS)
    [task] = table.scan().plan_files()
    groups = pq.read_metadata(task.file.file_path.removeprefix("file://")).num_row_groups
    assert groups == 3  # 8,192 rows each: a deep page decodes at most one of them


def test_a_page_of_files_written_before_a_column_was_added_shows_it_empty(
    small_groups: Warehouse,
) -> None:
    from pyiceberg.types import StringType

    table = small_groups.table(TableName.BRONZE_RECORDS)
    with table.update_schema() as update:
        update.add_column("added_later", StringType(), doc="a column newer than the files")
    page = browse.read_page(small_groups, "bronze.records", offset=60, limit=3)
    assert [row["added_later"] for row in page.rows] == [None, None, None]
    assert [r["record_id"] for r in page.rows] == _all(small_groups)[60:63]


def test_a_deep_filtered_page_across_row_groups_and_files_is_that_slice_of_the_matches(
    small_groups: Warehouse,
) -> None:
    matches = [
        r["record_id"]
        for r in small_groups.read(TableName.BRONZE_RECORDS).to_pylist()
        if r["source"] != "s1"
    ]
    for offset in (0, 4, 5, 30, 33, 60, 63, 200):
        page = browse.read_page(
            small_groups, "bronze.records", where="source != 's1'", offset=offset, limit=4
        )
        assert [r["record_id"] for r in page.rows] == matches[offset : offset + 4]
        assert page.has_more == (offset + 4 < len(matches))
