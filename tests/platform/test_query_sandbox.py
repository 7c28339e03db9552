"""`posttrain query` reads the posttrain tables and nothing else, and never writes.

Each attack below worked before the sandbox: it printed /etc/passwd, wrote files, attached
databases or overwrote the warehouse's own Parquet files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.types import LongType

from posttrain.platform.lineage import Lineage
from posttrain.platform.query import QueryError, QueryRefusedError, connect, run_query
from posttrain.platform.schemas import SILVER_CONVERSATIONS, SILVER_REJECTIONS, TableName
from posttrain.platform.warehouse import Warehouse


@pytest.fixture
def filled(warehouse: Warehouse) -> Warehouse:
    rejections = [
        {"record_id": f"r{i}", "reason": "near_dup", "kept_record_id": f"k{i % 3}"}
        for i in range(6)
    ]
    warehouse.append(
        TableName.SILVER_REJECTIONS,
        pa.Table.from_pylist(rejections, schema=SILVER_REJECTIONS),
        Lineage("t"),
    )
    conversations = [{"record_id": f"k{i}", "num_turns": i + 2} for i in range(3)]
    warehouse.append(
        TableName.SILVER_CONVERSATIONS,
        pa.Table.from_pylist(conversations, schema=SILVER_CONVERSATIONS),
        Lineage("t"),
    )
    return warehouse


def _home(warehouse: Warehouse) -> Path:
    return Path(warehouse.settings.warehouse.removeprefix("file://")).parent


def _fingerprint(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _a_data_file(warehouse: Warehouse) -> str:
    table = warehouse.table(TableName.SILVER_REJECTIONS)
    return next(iter(table.scan().plan_files())).file.file_path.removeprefix("file://")


ATTACKS = {
    "read_csv": "select * from read_csv('/etc/passwd')",
    "read_text": "select * from read_text('/etc/passwd')",
    "read_blob": "select * from read_blob('/etc/passwd')",
    "read_parquet": "select * from read_parquet('/etc/passwd')",
    "sniff_csv": "select * from sniff_csv('/etc/passwd')",
    "file_as_table": "select * from '/etc/passwd'",
    "glob": "select * from glob('/etc/*')",
    "copy_to_file": "copy (select 1) to '{tmp}/stolen.csv'",
    "copy_over_warehouse": "copy (select * from silver.rejections limit 1) to '{data_file}'",
    "attach": "attach '{tmp}/other.db' as other",
    "detach": "detach memory",
    "install": "install httpfs",
    "load": "load httpfs",
    "set_external_access": "set enable_external_access = true",
    "reset_lock": "set lock_configuration = false",
    "pragma": "pragma enable_profiling",
    "call_pragma": "call pragma_version()",
    "export": "export database '{tmp}/dump'",
    "import": "import database '{tmp}/dump'",
    "good_then_copy": "select 1; copy (select 1) to '{tmp}/stolen.csv'",
    "two_selects": "select 1; select 2",
    "create": "create table t as select 1 as x",
    "create_view": "create view silver.sneaky as select 1",
    "insert": "insert into silver.rejections (record_id, reason) values ('x', 'empty')",
    "update": "update silver.rejections set reason = 'empty'",
    "delete": "delete from silver.rejections",
    "drop": "drop view silver.rejections",
    "python_variable": "select * from ATTACKS",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_is_refused_in_one_line_and_changes_nothing(
    filled: Warehouse, tmp_path: Path, attack: str
) -> None:
    sql = ATTACKS[attack].format(tmp=tmp_path, data_file=_a_data_file(filled))
    before = _fingerprint(_home(filled))
    outside = sorted(tmp_path.iterdir())
    with pytest.raises(QueryError) as refused:
        run_query(filled, sql)
    message = str(refused.value)
    assert "\n" not in message and message
    assert "root:" not in message
    assert _fingerprint(_home(filled)) == before
    assert sorted(tmp_path.iterdir()) == outside
    assert run_query(filled, "select count(*) n from silver.rejections").to_pylist() == [{"n": 6}]


@pytest.mark.parametrize(
    "sql", ["copy (select 1) to 'x.csv'", "attach 'x.db'", "select 1; drop view silver.x"]
)
def test_statements_other_than_select_are_refused_before_running(
    filled: Warehouse, sql: str
) -> None:
    with pytest.raises(QueryRefusedError, match="read-only"):
        run_query(filled, sql)


def test_joins_and_aggregates_over_namespaced_tables_still_work(filled: Warehouse) -> None:
    result = run_query(
        filled,
        "select c.record_id, c.num_turns, count(*) as dropped "
        "from silver.rejections r join silver.conversations c on r.kept_record_id = c.record_id "
        "group by all order by 1",
    )
    assert result.to_pylist() == [
        {"record_id": "k0", "num_turns": 2, "dropped": 2},
        {"record_id": "k1", "num_turns": 3, "dropped": 2},
        {"record_id": "k2", "num_turns": 4, "dropped": 2},
    ]


def test_describe_and_cte_are_reads(filled: Warehouse) -> None:
    names = run_query(filled, "describe silver.rejections").column("column_name").to_pylist()
    assert names[:2] == ["record_id", "reason"]
    assert run_query(filled, "with k as (select 1 as x) from k").to_pylist() == [{"x": 1}]


def test_filters_and_projections_are_pushed_into_the_scan(filled: Warehouse) -> None:
    con = connect(filled)
    plan = con.sql("explain select record_id from silver.rejections where kept_record_id = 'k1'")
    text = "\n".join(str(row[1]) for row in plan.fetchall())
    con.close()
    assert "ARROW_SCAN" in text.upper()
    assert "Filters:kept_record_id='k1'" in text.replace(" ", "").replace('"', "")
    assert "Projections:record_id│" in text.replace(" ", "")


def test_a_table_with_a_column_added_later_reads_nulls_for_old_files(filled: Warehouse) -> None:
    table = filled.table(TableName.SILVER_CONVERSATIONS)
    with table.update_schema() as update:
        update.add_column("late", LongType())
    rows = run_query(filled, "select count(*) n, count(late) l from silver.conversations")
    assert rows.to_pylist() == [{"n": 3, "l": 0}]


def test_a_syntax_error_says_where(filled: Warehouse) -> None:
    with pytest.raises(QueryError, match=r'near "where" \(line 3, column 7\)$'):
        run_query(filled, "select 1\nfrom silver.rejections\nwhere where")
