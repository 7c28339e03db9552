"""Loader throughput and memory: ``posttrain.platform.loader.load(..., streaming=True)``
against raw pyarrow reading the same Parquet files.

A packed-like table (``input_ids``, ``assistant_masks``, ``seq_lengths`` as list<int32>,
``--seq-length`` tokens a row, random ids below 8,192) is written at two sizes into a
warehouse under ``bench/.cache/`` (built once, reused), with row groups of
``--row-group-rows`` rows (the table property ``write.parquet.row-group-limit``). Then, per
size, each side runs in its own subprocess so its peak RSS is its own:

* **loader**: ``load("bench.packed", columns, streaming=True)`` iterated as Arrow tables
  (``.with_format("arrow").iter(batch_size=--row-group-rows)``), the way a data collator
  that works on Arrow (or ``datasets.map(batched=True)``) consumes it;
* **blend**: the blend loader (:mod:`posttrain.platform.blend`) over a one-source blend of
  the same table: ``pin_blend`` then ``iter_blend_batches`` (Arrow batches with the
  ``_source`` column); ``pin_blend`` is timed apart (a trainer streams a blend pinned once at
  launch), planning the scan is in the time;
* **blend-rows**: the same through ``BlendDataset`` as rows (``row_format="numpy"``: the
  token lists as NumPy views), as a DataLoader would take them;
* **raw-dataset**: ``pyarrow.dataset.dataset(files).to_batches(columns)`` over the data
  files of the same snapshot, multi-threaded with pyarrow's default readahead;
* **raw-file**: ``pyarrow.parquet.ParquetFile(path).iter_batches(...)`` file after file,
  the most frugal way pyarrow reads them.

Like with like: every side reads the same three columns of the same files and hands its
consumer Arrow record batches of at most ``--row-group-rows`` (1,024) rows (the blend's carry
one more column, ``_source``; ``blend-rows`` hands out rows instead); each counts rows and
tokens (sum of ``input_ids`` lengths) from them. Each side's time starts from an opened table and
includes planning its scan (the raw sides list the snapshot's data files with
``scan().plan_files()``, as the blend and the loader do). Rounds alternate the sides, one
fresh process per side and round; a ratio is taken round by round (both sides of a round
ran under the same load) and the median round's is reported, with the range and the ratio
of the two sides' best rounds; each side's
figures are its median round's wall and CPU time (user + system of all its threads, from
``getrusage``); peak RSS is the largest seen. The table is written in one commit, as the
gold asset writes a packing. Targets:
loader ≥ 0.8× raw throughput (the faster raw side), blend ≥ 0.9× ``raw-file`` (the same
batches without a blend), and peak RSS flat in table size.

Usage:
    .venv/bin/python bench/loader.py [--rows 32000 128000] [--seq-length 1024] [--repeats 5]
        [--sides blend raw-file]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
TABLE = "bench.packed"
COLUMNS = ("input_ids", "assistant_masks", "seq_lengths")
VOCAB = 8192
SEED = 11
CHUNK_ROWS = 4096
SIDES = ("loader", "blend", "blend-rows", "raw-dataset", "raw-file")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _home(rows: int, seq_length: int, row_group_rows: int) -> Path:
    # "-one-commit": tables built before the single-commit layout below are not reused.
    return CACHE / f"loader-{rows}x{seq_length}-rg{row_group_rows}-one-commit"


def _packed_chunk(rng: np.random.Generator, start: int, rows: int, seq_length: int) -> pa.Table:
    ids = rng.integers(0, VOCAB, size=rows * seq_length, dtype=np.int32)
    masks = (rng.random(rows * seq_length) < 0.6).astype(np.int32)
    offsets = np.arange(0, (rows + 1) * seq_length, seq_length, dtype=np.int32)
    # Each pack holds 2-5 conversations; their lengths add up to seq_length.
    lengths: list[list[int]] = []
    for _ in range(rows):
        parts = int(rng.integers(2, 6))
        cuts = np.sort(rng.choice(np.arange(1, seq_length), size=parts - 1, replace=False))
        lengths.append(np.diff(np.concatenate(([0], cuts, [seq_length]))).tolist())
    return pa.table(
        {
            "pack_key": pa.array(["bench"] * rows, pa.string()),
            "pack_id": pa.array(range(start, start + rows), pa.int64()),
            "input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids)),
            "assistant_masks": pa.ListArray.from_arrays(pa.array(offsets), pa.array(masks)),
            "seq_lengths": pa.array(lengths, pa.list_(pa.int32())),
            "record_ids": pa.array([[f"r{start + i}"] for i in range(rows)], pa.list_(pa.string())),
            "num_tokens": pa.array([seq_length] * rows, pa.int32()),
        }
    )


def build(rows: int, seq_length: int, row_group_rows: int) -> Path:
    """Write the bench table once; later runs reuse it."""
    from posttrain.platform.lineage import Lineage
    from posttrain.platform.schemas import GOLD_SFT_PACKED
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings

    home = _home(rows, seq_length, row_group_rows)
    done = home / "built"
    if done.exists():
        return home
    warehouse = Warehouse(WarehouseSettings.local(home))
    if warehouse.exists(TABLE):
        warehouse.catalog.drop_table(TABLE)
    if "bench" not in {ns[0] for ns in warehouse.catalog.list_namespaces()}:
        warehouse.catalog.create_namespace("bench")
    warehouse.catalog.create_table(
        TABLE,
        schema=GOLD_SFT_PACKED,
        properties={
            "format-version": "2",
            "write.parquet.compression-codec": "zstd",
            "write.parquet.row-group-limit": str(row_group_rows),
        },
    )
    # One commit, as the gold asset writes a packing (``gold.build``: one overwrite): the
    # warehouse then cuts its data files on whole row groups (``warehouse._in_row_groups``).
    rng = np.random.default_rng(SEED)
    chunks = [
        _packed_chunk(rng, start, min(CHUNK_ROWS, rows - start), seq_length)
        for start in range(0, rows, CHUNK_ROWS)
    ]
    warehouse.append(TABLE, pa.concat_tables(chunks), Lineage("bench"))
    done.write_text("ok\n")
    return home


def _count(batch: pa.Table | pa.RecordBatch) -> tuple[int, int]:
    lengths = pc.list_value_length(batch.column("input_ids"))
    return batch.num_rows, int(pc.sum(lengths).as_py() or 0)


def measure(side: str, home: Path, batch_rows: int) -> dict[str, Any]:
    """One pass over the table by ``side`` in this process: rows, tokens, seconds, RSS."""
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings

    warehouse = Warehouse(WarehouseSettings.local(home))
    rows = tokens = 0
    pin_seconds = 0.0
    if side == "loader":
        import datasets

        from posttrain.platform.loader import load

        # Constructing an IterableDataset imports torch when it is installed (a one-off
        # second or two that a training process has paid already): not part of the read.
        datasets.IterableDataset.from_generator(lambda: iter(()))
        baseline = _peak_rss_mb()
        start, cpu = time.perf_counter(), _cpu_seconds()
        dataset = load(TABLE, COLUMNS, streaming=True, warehouse=warehouse)
        for table in dataset.with_format("arrow").iter(batch_size=batch_rows):
            counted = _count(table)
            rows, tokens = rows + counted[0], tokens + counted[1]
    elif side in ("blend", "blend-rows"):
        from posttrain.platform.blend import BlendSource, BlendSpec, pin_blend

        if side == "blend-rows":
            from posttrain.platform.blend import BlendDataset
        warehouse.table(TABLE)  # open the catalog, as the raw sides do before the clock
        # Pinning happens once, at launch (the manifest stores the pinned blend): a trainer
        # streams an already pinned blend, so it is timed apart.
        pinning = time.perf_counter()
        spec = BlendSpec(sources=[BlendSource(ref=TABLE)], columns=list(COLUMNS), seed=SEED)
        pinned = pin_blend(warehouse, spec)
        pin_seconds = time.perf_counter() - pinning
        baseline = _peak_rss_mb()
        start, cpu = time.perf_counter(), _cpu_seconds()
        if side == "blend":
            from posttrain.platform.blend import iter_blend_batches

            for batch in iter_blend_batches(warehouse, pinned, batch_rows=batch_rows):
                counted = _count(batch)
                rows, tokens = rows + counted[0], tokens + counted[1]
        else:
            rows_out = BlendDataset(
                warehouse.settings, pinned, batch_rows=batch_rows, row_format="numpy"
            )
            for row in rows_out:
                rows, tokens = rows + 1, tokens + len(row["input_ids"])
    else:
        import pyarrow.dataset as pds
        import pyarrow.parquet as pq

        table = warehouse.table(TABLE)
        baseline = _peak_rss_mb()
        start, cpu = time.perf_counter(), _cpu_seconds()
        # Listing the snapshot's data files is part of reading an Iceberg table, for the
        # blend (which plans its scan inside the clock) as for raw pyarrow.
        files = [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]
        if side == "raw-dataset":
            batches = pds.dataset(files, format="parquet").to_batches(columns=list(COLUMNS))
        else:
            batches = (
                batch
                for path in files
                for batch in pq.ParquetFile(path).iter_batches(batch_rows, columns=list(COLUMNS))
            )
        for batch in batches:
            counted = _count(batch)
            rows, tokens = rows + counted[0], tokens + counted[1]
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu
    return {
        "side": side,
        "rows": rows,
        "tokens": tokens,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "pin_seconds": pin_seconds,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _build_in_subprocess(rows: int, seq_length: int, row_group_rows: int) -> Path:
    """:func:`build` in a child: a process's peak RSS survives ``exec``, so building the
    table here (a GB for 128,000 rows) would show in every side's peak RSS after it."""
    subprocess.run(
        [
            sys.executable,
            "-P",
            __file__,
            "--build",
            "--rows",
            str(rows),
            "--seq-length",
            str(seq_length),
            "--row-group-rows",
            str(row_group_rows),
        ],
        check=True,
    )
    return _home(rows, seq_length, row_group_rows)


def _in_subprocess(side: str, home: Path, batch_rows: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-P",
            __file__,
            "--measure",
            side,
            "--home",
            str(home),
            "--batch-rows",
            str(batch_rows),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _report(side: str, result: dict[str, Any]) -> str:
    seconds, cpu = result["seconds"], result["cpu_seconds"]
    return (
        f"  {side:<12} {result['rows'] / seconds:>9,.0f} rows/s "
        f"{result['tokens'] / seconds / 1e6:6.1f} M tokens/s (wall), "
        f"{result['tokens'] / cpu / 1e6:6.1f} M tokens per CPU second   peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB ({result['baseline_rss_mb']:,.0f} MB before reading)"
        + (
            f"; pin_blend {result['pin_seconds'] * 1e3:.0f} ms apart"
            if result["pin_seconds"]
            else ""
        )
    )


def _ratio(rounds: dict[str, list[dict[str, Any]]], side: str, peer: str) -> str:
    """``side``'s throughput over ``peer``'s, round by round: the median (and range)."""
    parts = []
    for key, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        ratios = [
            theirs[key] / ours[key] for ours, theirs in zip(rounds[side], rounds[peer], strict=True)
        ]
        fastest = min(result[key] for result in rounds[peer])
        best = fastest / min(result[key] for result in rounds[side])
        parts.append(
            f"{statistics.median(ratios):.2f}x {label} ({min(ratios):.2f}-{max(ratios):.2f}; "
            f"best vs best {best:.2f}x)"
        )
    return f"{side} / {peer} = " + ", ".join(parts)


def _median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures: median wall and CPU seconds over the rounds, largest peak RSS."""
    return {
        **results[0],
        "seconds": statistics.median(result["seconds"] for result in results),
        "cpu_seconds": statistics.median(result["cpu_seconds"] for result in results),
        "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[32000, 128000])
    parser.add_argument("--seq-length", type=int, default=1024)
    parser.add_argument("--row-group-rows", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--sides", nargs="+", choices=SIDES, default=list(SIDES), help="Sides to measure."
    )
    parser.add_argument("--measure", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batch-rows", type=int, default=1024, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.home, args.batch_rows)))
        return
    if args.build:
        build(args.rows[0], args.seq_length, args.row_group_rows)
        return

    sides = [side for side in SIDES if side in args.sides]
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    lines = []
    for rows in args.rows:
        started = time.perf_counter()
        home = _build_in_subprocess(rows, args.seq_length, args.row_group_rows)
        print(
            f"table {rows:,} rows x {args.seq_length} tokens ready in "
            f"{time.perf_counter() - started:.1f} s ({home})",
            flush=True,
        )
        rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for _ in range(args.repeats):
            for side in sides:
                result = _in_subprocess(side, home, args.row_group_rows)
                assert result["rows"] == rows, result
                rounds[side].append(result)
        typical = {side: _median_round(results) for side, results in rounds.items()}
        assert len({typical[side]["tokens"] for side in sides}) == 1, typical
        size_mb = sum(p.stat().st_size for p in home.rglob("*.parquet")) / 2**20
        tokens = typical[sides[0]]["tokens"]
        ratios = [
            _ratio(rounds, side, peer)
            for side, peer in (("blend", "raw-file"), ("loader", "raw-file"))
            if side in typical and peer in typical
        ]
        if {"raw-dataset", "raw-file", "loader", "blend"} <= typical.keys():
            fastest = min(typical["raw-dataset"]["seconds"], typical["raw-file"]["seconds"])
            loader, blend = typical["loader"]["seconds"], typical["blend"]["seconds"]
            ratios.append(
                f"wall vs the faster raw side: loader {fastest / loader:.2f}x, "
                f"blend {fastest / blend:.2f}x"
            )
        lines.append(
            f"{rows:,} rows / {tokens / 1e6:.1f} M tokens ({size_mb:,.0f} MB Parquet): "
            + "; ".join(ratios)
        )
        lines.extend(_report(side, typical[side]) for side in sides)
    print()
    print(
        f"Arrow batches of the same columns, at most {args.row_group_rows:,} rows each: the "
        "blend loader and "
        "the streaming loader vs raw pyarrow (ParquetFile.iter_batches file by file, and "
        f"pyarrow.dataset); {args.repeats} rounds, ratios per round (median, range), figures "
        "of the median round:"
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
