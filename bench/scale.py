"""Scale-out benchmark: Ray workers, the Postgres catalog and S3, each against its baseline.

All on this machine, in one run, on real services started by
``posttrain.platform.local_stack`` (the same code as the tests and ``make demo-scale``):

1. **Ray scaling**: dedup (``deduplicate``: fingerprints on the workers, the duplicate
   graph on the driver) and tokenization (``tokenize_conversations``) on a local Ray
   cluster with 1, then 2 worker processes of 1 CPU each (a head with no CPU: every task
   runs on a worker). Ratio = time(1 worker) / time(2 workers); the ideal is 2.0. The
   outputs are hashed and must equal the in-process run's.
2. **Iceberg commit latency**: ``--commits`` appends of one small batch through posttrain's
   ``Warehouse.append``, on the SQL catalog on Postgres against SQLite (same local
   warehouse folder kind, so only the catalog differs).
3. **Object store**: write and read ``--s3-mb`` MB of Parquet through pyarrow's S3
   filesystem (pyiceberg's S3 file IO) against moto's S3 server, against the local disk.

The machine has 2 cores shared with other jobs: the 2-worker figures cannot reach 2.0
even in principle while anything else runs, and moto is a Python emulator, not S3: its
throughput is a floor for the code path, not a forecast of AWS.

Usage:
    .venv/bin/python bench/scale.py [--dedup-mb 20] [--tokenize-mb 8] [--commits 30]
        [--s3-mb 64] [--repeats 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dedup as dedup_bench
import tokenization as tokenize_bench

from posttrain.platform.dedup import DedupConfig, deduplicate
from posttrain.platform.dedup.dedup import _fingerprint, _nodes
from posttrain.platform.dedup.graph import build_graph
from posttrain.platform.dedup.outcome import decide
from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor
from posttrain.platform.gold.tokenize import TokenizeConfig, tokenize_conversations
from posttrain.platform.local_stack import (
    start_postgres,
    start_ray_cluster,
    start_s3,
)
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

DEDUP = DedupConfig()
DEDUP_BATCH_ROWS = 1024
TOKENIZE_BATCH_ROWS = 512


def _best(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def _digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


def dedup_run(table: pa.Table, executor: Executor, repeats: int) -> dict[str, Any]:
    """Whole dedup time, and its two parts: fingerprints (workers) and graph (driver)."""

    def phases() -> dict[str, Any]:
        started = time.perf_counter()
        fingerprints, _ = _fingerprint(table, "text", DEDUP, executor, DEDUP_BATCH_ROWS)
        mapped = time.perf_counter()
        from posttrain.platform.dedup.published import PublishedIndex

        nodes = _nodes(fingerprints, PublishedIndex.empty(DEDUP), DEDUP)
        graph = build_graph(nodes, DEDUP, executor.progress)
        decide(nodes, graph, DEDUP)
        done = time.perf_counter()
        return {
            "map_s": mapped - started,
            "driver_s": done - mapped,
            "signature_bytes": fingerprints.nbytes,
        }

    seconds, result = _best(
        repeats,
        lambda: deduplicate(
            table, DEDUP, executor, text_column="text", batch_rows=DEDUP_BATCH_ROWS
        ),
    )
    split = min((phases() for _ in range(repeats)), key=lambda p: p["map_s"] + p["driver_s"])
    return {
        "seconds": seconds,
        **split,
        "digest": _digest(result.assignments) + _digest(result.rejected),
    }


def tokenize_run(corpus: pa.Table, executor: Executor, repeats: int) -> dict[str, Any]:
    config = TokenizeConfig()
    seconds, result = _best(
        repeats,
        lambda: tokenize_conversations(corpus, config, executor, batch_rows=TOKENIZE_BATCH_ROWS),
    )
    tokens = int(sum(len(ids) for ids in result.kept.column("input_ids").to_pylist()))
    return {"seconds": seconds, "tokens": tokens, "digest": _digest(result.kept)}


def ray_scaling(dedup_mb: float, tokenize_mb: float, repeats: int) -> dict[str, Any]:
    docs = pq.read_table(dedup_bench.build_corpus(dedup_mb))
    conversations = tokenize_bench.build_corpus(tokenize_mb)
    text_mb = sum(len(t.encode()) for t in docs["text"].to_pylist()) / 1e6
    print(
        f"dedup corpus: {docs.num_rows:,} docs, {text_mb:.1f} MB; "
        f"tokenize corpus: {conversations.num_rows:,} conversations"
    )
    local = InProcessExecutor()
    baseline = {
        "dedup": dedup_run(docs, local, 1),
        "tokenize": tokenize_run(conversations, local, 1),
    }
    cluster = start_ray_cluster(workers=1, cpus_per_worker=1)
    results: dict[str, Any] = {"in_process": baseline, "docs": docs.num_rows, "text_mb": text_mb}
    try:
        import ray

        for workers in (1, 2):
            if workers == 2:
                ray.shutdown()
                cluster.add_worker(1)
            executor = RayExecutor(address=cluster.address)
            print(f"  {executor.describe()}")
            # Warm-up, untimed: the workers import the stages and load the tokenizer.
            deduplicate(docs.slice(0, 256), DEDUP, executor, text_column="text", batch_rows=64)
            tokenize_conversations(
                conversations.slice(0, 256), TokenizeConfig(), executor, batch_rows=64
            )
            results[f"ray_{workers}"] = {
                "dedup": dedup_run(docs, executor, repeats),
                "tokenize": tokenize_run(conversations, executor, repeats),
            }
            executor.close()
        ray.shutdown()
    finally:
        cluster.stop()
    for stage in ("dedup", "tokenize"):
        digests = {results[k][stage]["digest"] for k in ("in_process", "ray_1", "ray_2")}
        if len(digests) != 1:
            raise SystemExit(f"{stage}: outputs differ between in-process and Ray: {digests}")
    return results


def _median_commit_ms(settings: WarehouseSettings, commits: int) -> float:
    """Median wall time of one pyiceberg append (one catalog commit) of a 2-row batch."""
    schema = pa.schema([pa.field("n", pa.int64(), nullable=False)])
    warehouse = Warehouse(settings)
    warehouse.catalog.create_namespace("bench")
    table = warehouse.catalog.create_table("bench.commits", schema=schema)
    rows = pa.table({"n": [1, 2]}, schema=schema)
    times = []
    for _ in range(commits):
        started = time.perf_counter()
        table.append(rows)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def commit_latency(commits: int) -> dict[str, float]:
    """Postgres SQL catalog against SQLite, both over a local warehouse folder."""
    postgres = start_postgres(databases=("bench",))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return {
                "sqlite": _median_commit_ms(WarehouseSettings.local(Path(tmp) / "sqlite"), commits),
                "postgres": _median_commit_ms(
                    WarehouseSettings(
                        catalog_uri=postgres.url("bench"),
                        warehouse=(Path(tmp) / "pg-warehouse").as_uri(),
                    ),
                    commits,
                ),
            }
    finally:
        postgres.stop()


def _throughput(table: pa.Table, filesystem: Any, path: str) -> tuple[float, float]:
    """Best-of-2 write and read MB/s of ``table`` as uncompressed Parquet at ``path``."""
    write_s, _ = _best(
        2, lambda: pq.write_table(table, path, filesystem=filesystem, compression="none")
    )
    size = filesystem.get_file_info(path).size / 1e6
    read_s, _ = _best(2, lambda: pq.read_table(path, filesystem=filesystem))
    return size / write_s, size / read_s


def object_store(megabytes: int) -> dict[str, float]:
    """pyarrow's S3 filesystem against moto's S3 server, and the local disk."""
    import numpy as np
    from pyarrow import fs

    rng = np.random.default_rng(7)
    rows = megabytes * 1_000_000 // 64
    table = pa.table(
        {f"c{i}": rng.integers(0, 2**62, rows) if i % 2 else rng.random(rows) for i in range(8)}
    )
    s3 = start_s3()
    try:
        s3.create_bucket("bench")
        remote = fs.S3FileSystem(
            endpoint_override=s3.endpoint,
            region=s3.region,
            access_key=s3.access_key_id,
            secret_key=s3.secret_access_key,
            scheme="http",
        )
        with tempfile.TemporaryDirectory() as tmp:
            local_w, local_r = _throughput(table, fs.LocalFileSystem(), f"{tmp}/t.parquet")
            s3_w, s3_r = _throughput(table, remote, "bench/t.parquet")
    finally:
        s3.stop()
    return {
        "local_write_mb_s": local_w,
        "local_read_mb_s": local_r,
        "s3_write_mb_s": s3_w,
        "s3_read_mb_s": s3_r,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dedup-mb", type=float, default=20)
    parser.add_argument("--tokenize-mb", type=float, default=8)
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--s3-mb", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")

    scaling = ray_scaling(args.dedup_mb, args.tokenize_mb, args.repeats)
    commits = commit_latency(args.commits)
    store = object_store(args.s3_mb)
    report = {
        "ray": scaling,
        "commit_ms": commits,
        "object_store": store,
        "load": os.getloadavg()[0],
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))

    mb, docs = scaling["text_mb"], scaling["docs"]
    print("\nRay scaling (1 CPU per worker process; ideal ratio 2.0):")
    for stage in ("dedup", "tokenize"):
        one, two = scaling["ray_1"][stage]["seconds"], scaling["ray_2"][stage]["seconds"]
        local = scaling["in_process"][stage]["seconds"]
        print(
            f"  {stage:9s} in-process {local:6.2f} s | 1 worker {one:6.2f} s | "
            f"2 workers {two:6.2f} s | scaling {one / two:.2f}x of 2.0"
        )
    for key in ("ray_1", "ray_2"):
        d = scaling[key]["dedup"]
        print(
            f"  dedup {key}: fingerprints {d['map_s']:.2f} s (workers), graph "
            f"{d['driver_s']:.2f} s (driver), {docs / d['seconds']:,.0f} docs/s, "
            f"{mb / d['seconds']:.1f} MB/s"
        )
    sig = scaling["ray_1"]["dedup"]["signature_bytes"] / docs
    print(f"  driver-held fingerprints: {sig:,.0f} bytes per document")
    tokens = scaling["ray_2"]["tokenize"]["tokens"]
    for key in ("ray_1", "ray_2"):
        print(f"  tokenize {key}: {tokens / scaling[key]['tokenize']['seconds']:,.0f} tokens/s")
    print("  outputs byte-identical in-process / 1 worker / 2 workers: yes")
    print(
        f"\nIceberg commit latency, median of {args.commits} appends: "
        f"Postgres {commits['postgres']:.1f} ms, SQLite {commits['sqlite']:.1f} ms, "
        f"ratio {commits['postgres'] / commits['sqlite']:.2f}x"
    )
    print(
        f"\nObject store, {args.s3_mb} MB Parquet: write S3(moto) {store['s3_write_mb_s']:.0f} "
        f"MB/s vs local {store['local_write_mb_s']:.0f} MB/s "
        f"({store['s3_write_mb_s'] / store['local_write_mb_s']:.2f}x); read "
        f"{store['s3_read_mb_s']:.0f} vs {store['local_read_mb_s']:.0f} MB/s "
        f"({store['s3_read_mb_s'] / store['local_read_mb_s']:.2f}x)"
    )


if __name__ == "__main__":
    main()
