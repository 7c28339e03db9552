"""`head` (behind `posttrain show`): the right rows, with limit, filter and columns pushed down."""

from __future__ import annotations

import pyarrow as pa
import pytest

from posttrain.platform.lineage import Lineage
from posttrain.platform.query import QueryError, head
from posttrain.platform.schemas import SILVER_CONVERSATIONS, TableName
from posttrain.platform.warehouse import Warehouse

TABLE = TableName.SILVER_CONVERSATIONS


@pytest.fixture
def three_files(warehouse: Warehouse) -> Warehouse:
    """Rows k0..k29 in three appends (three data files) of ten rows each."""
    for start in (0, 10, 20):
        rows = [
            {"record_id": f"k{i}", "num_turns": i, "source": "even" if i % 2 == 0 else "odd"}
            for i in range(start, start + 10)
        ]
        warehouse.append(
            TABLE, pa.Table.from_pylist(rows, schema=SILVER_CONVERSATIONS), Lineage("t")
        )
    return warehouse


def _ids(table: pa.Table) -> list[str]:
    return sorted(table.column("record_id").to_pylist(), key=lambda key: int(key[1:]))


def test_limit_returns_that_many_rows_of_the_table(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, limit=3)
    assert rows.num_rows == 3
    assert set(rows.column("record_id").to_pylist()) <= {f"k{i}" for i in range(30)}
    assert rows.schema.names == SILVER_CONVERSATIONS.names


def test_a_limit_larger_than_a_file_continues_into_the_next(three_files: Warehouse) -> None:
    assert head(three_files, TABLE, limit=25).num_rows == 25
    assert head(three_files, TABLE, limit=100).num_rows == 30


def test_where_returns_exactly_the_matching_rows(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, where="num_turns >= 18 and source = 'odd'", limit=100)
    assert _ids(rows) == ["k19", "k21", "k23", "k25", "k27", "k29"]


def test_where_with_limit_stops_at_the_limit(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, where="source = 'even'", limit=4)
    assert rows.num_rows == 4
    assert all(int(key[1:]) % 2 == 0 for key in rows.column("record_id").to_pylist())


def test_where_on_a_column_not_shown_still_filters(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, columns=("record_id",), where="num_turns = 27", limit=5)
    assert rows.to_pylist() == [{"record_id": "k27"}]


def test_columns_select_and_order_the_output(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, columns=("num_turns", "record_id"), where="num_turns = 3")
    assert rows.to_pylist() == [{"num_turns": 3, "record_id": "k3"}]


def test_a_filter_that_matches_nothing_returns_an_empty_table(three_files: Warehouse) -> None:
    rows = head(three_files, TABLE, where="num_turns > 1000")
    assert rows.num_rows == 0 and rows.schema.names == SILVER_CONVERSATIONS.names


def test_an_empty_table_shows_no_rows(warehouse: Warehouse) -> None:
    warehouse.ensure_table(TABLE)
    assert head(warehouse, TABLE, limit=3).num_rows == 0


def test_rows_of_a_deleted_snapshot_are_not_shown(three_files: Warehouse) -> None:
    three_files.table(TABLE).delete("num_turns < 25")
    rows = head(three_files, TABLE, limit=100)
    assert _ids(rows) == [f"k{i}" for i in range(25, 30)]


def test_an_unknown_column_names_the_columns_there_are(three_files: Warehouse) -> None:
    with pytest.raises(QueryError, match=r"--columns: no column 'nope' .*columns: record_id"):
        head(three_files, TABLE, columns=("record_id", "nope"))


def test_a_filter_on_an_unknown_column_is_one_line(three_files: Warehouse) -> None:
    with pytest.raises(QueryError, match=r"--where .*nope") as failed:
        head(three_files, TABLE, where="nope = 1")
    assert "\n" not in str(failed.value)


def test_a_filter_that_does_not_parse_says_where(three_files: Warehouse) -> None:
    with pytest.raises(
        QueryError, match=r"cannot parse at column 18 \(the end of the filter\)"
    ) as failed:
        head(three_files, TABLE, where="num_turns = 3 and")
    assert "\n" not in str(failed.value)
