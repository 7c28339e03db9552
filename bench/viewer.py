"""Viewer page-load time at 10k and at 10M rows: flat in table size, goal < 300 ms.

Builds ``bronze.records`` with narrow rows (id, row index, source; pyarrow, one append per
million rows) in a temporary warehouse per size, serves the viewer with uvicorn on
127.0.0.1 and times full HTTP loads (25 rows, rendered HTML) of the first page, of pages at
random deep offsets, of the first and of deep pages of a filter (``source = 's1'``), of
the first load of a new filter's last page (five filters on ``source``), and of histograms
(``source``, a new filter each: histograms are cached per snapshot; above 1M rows they
count an evenly spaced sample of row groups). The peer is
DuckDB's own Parquet reader on the snapshot's data files, reading the same deep pages
(``LIMIT 25 OFFSET n``, no HTML), in the same run. Tables get the warehouse's row-group
size unless ``--row-group-rows`` says otherwise (1048576: pyiceberg's default).

    .venv/bin/python bench/viewer.py [--rows 10000 10000000] [--requests 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pyarrow as pa

from posttrain.platform.datafiles import snapshot_files
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "viewer"))
from viewer_server import ServerThread

GOAL_MS = 300.0
CHUNK = 1_000_000
TABLE = TableName.BRONZE_RECORDS
# The page loads the goal is about, at every size (histograms are aggregates).
PAGES = ("first page", "page", "filtered page", "deep filtered page")


def _chunk(start: int, rows: int) -> pa.Table:
    schema = TABLES[TABLE].schema
    index = pa.array(range(start, start + rows), pa.int64())
    ids = pa.compute.binary_join_element_wise("r", index.cast(pa.string()), "")
    sources = pa.DictionaryArray.from_arrays(
        pa.array([i % 3 for i in range(rows)], pa.int8()), pa.array(["s0", "s1", "s2"])
    ).cast(pa.string())
    columns = {
        field.name: (
            ids
            if field.name == "record_id"
            else index
            if field.name == "row_index"
            else sources
            if field.name == "source"
            else pa.nulls(rows, field.type)
        )
        for field in schema
    }
    return pa.Table.from_pydict(columns, schema=schema)


def _percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def measure(rows: int, requests: int, row_group_rows: int | None) -> dict[str, tuple[float, float]]:
    from posttrain.viewer.app import create_viewer_app

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        warehouse = Warehouse(WarehouseSettings.local(home))
        if row_group_rows:
            # A deep page decodes the rows before it inside its row group: smaller groups,
            # flatter pages (pyiceberg's default is 1,048,576 rows per group).
            table = warehouse.ensure_table(TABLE)
            with table.transaction() as transaction:
                transaction.set_properties({"write.parquet.row-group-limit": str(row_group_rows)})
        started = time.perf_counter()
        for start in range(0, rows, CHUNK):
            warehouse.append(TABLE, _chunk(start, min(CHUNK, rows - start)), Lineage("bench"))
        print(f"  built {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        app = create_viewer_app(load_settings(home), warehouse=warehouse, checkpoints={})
        rng = random.Random(0)
        offsets = [rng.randrange(0, max(1, rows - 25)) for _ in range(requests)]
        results: dict[str, tuple[float, float]] = {}
        with ServerThread(app) as server:
            base = f"{server.url}/t/{TABLE}"
            # Each histogram a different filter: a repeated one would be served from cache.
            histograms = [
                f"{base}/hist?col=source&where=row_index%20%3E%3D%20{o}" for o in offsets[:10]
            ]
            for label, urls in (
                ("first page", [base] * requests),
                ("page", [f"{base}?offset={o}" for o in offsets]),
                ("filtered page", [f"{base}?where=source%20%3D%20%27s1%27&offset=0"] * requests),
                (
                    "deep filtered page",
                    [f"{base}?where=source%20%3D%20%27s1%27&offset={o // 3}" for o in offsets],
                ),
                ("histogram (source, filtered)", histograms),
            ):
                urllib.request.urlopen(urls[0], timeout=120).read()  # warm: catalog, templates
                times = []
                for url in urls:
                    began = time.perf_counter()
                    with urllib.request.urlopen(url, timeout=120) as response:
                        response.read()
                    times.append(time.perf_counter() - began)
                results[label] = _percentiles(times)
            # A new filter's first deep page counts its matches before the offset (on the
            # filter's column only; cached for the snapshot afterwards): five new filters,
            # each at its last page.
            counts = {f"s{k}": (rows + 2 - k) // 3 for k in range(3)}
            cold_filters = [
                ("source = 's2'", counts["s2"]),
                ("source = 's0'", counts["s0"]),
                ("source != 's1'", counts["s0"] + counts["s2"]),
                ("source in ('s0', 's1')", counts["s0"] + counts["s1"]),
                ("source is not null", rows),
            ]
            times = []
            for where, matches in cold_filters:
                query = urllib.parse.urlencode({"where": where, "offset": max(0, matches - 20)})
                began = time.perf_counter()
                with urllib.request.urlopen(f"{base}?{query}", timeout=120) as response:
                    response.read()
                times.append(time.perf_counter() - began)
            results["last filtered page, cold"] = _percentiles(times)
        table = warehouse.table(TABLE)
        snapshot = table.current_snapshot()
        assert snapshot is not None
        files = [f.path for f in snapshot_files(table, snapshot.snapshot_id) or ()]
        con = duckdb.connect()
        con.read_parquet(files).create_view("t")
        times = []
        for offset in offsets:
            began = time.perf_counter()
            con.sql(f"select * from t limit 25 offset {offset}").fetchall()
            times.append(time.perf_counter() - began)
        results["duckdb page (peer, no HTML)"] = _percentiles(times)
        con.close()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 10_000_000])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument(
        "--row-group-rows",
        type=int,
        default=None,
        help="write.parquet.row-group-limit of the table (default: the warehouse's)",
    )
    args = parser.parse_args()
    measured = {}
    for rows in args.rows:
        print(f"{rows:,} rows:", flush=True)
        measured[rows] = measure(rows, args.requests, args.row_group_rows)
        for label, (p50, p99) in measured[rows].items():
            print(f"  {label:30s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms", flush=True)
    small, large = min(measured), max(measured)
    for label in measured[small]:
        ratio = measured[large][label][0] / max(measured[small][label][0], 1e-9)
        print(f"{label}: p50 at {large:,} / at {small:,} rows = {ratio:.2f}")
    viewer, peer = measured[large]["page"][0], measured[large]["duckdb page (peer, no HTML)"][0]
    print(f"viewer page vs DuckDB page at {large:,} rows: {viewer / max(peer, 1e-9):.2f}x")
    worst = max(measured[rows][label][1] for rows in measured for label in PAGES)
    print(
        f"goal: p99 < {GOAL_MS:.0f} ms — {'met' if worst < GOAL_MS else 'NOT met'} ({worst:.0f} ms)"
    )


if __name__ == "__main__":
    main()
