"""Scale-out benchmark: Ray workers, the Postgres catalog and S3, each against its baseline.

All on this machine, in one run, on real services started by
``posttrain.platform.local_stack`` (the same code as the tests and ``make demo-scale``):

1. **Ray scaling**: dedup (``deduplicate``: fingerprints on the workers, the duplicate
   graph on the driver, timed apart) and tokenization (``tokenize_conversations``) on a
   local Ray cluster of 2 worker processes of 1 CPU each (a head with no CPU: every task
   runs on a worker), with 1 task in flight (one worker busy) then 2 (both), in alternating
   rounds. Ratio = time(1 worker) / time(2 workers); the ideal is 2.0. The outputs are
   hashed and must equal the in-process run's. The driver's memory for the duplicate
   graph is measured too (``tracemalloc`` sees numpy's buffers), per document: it is what
   bounds dedup on one driver. So is ``ingest`` (JSONL to bronze), which runs in the
   driver's process.
2. **Iceberg commit latency**: ``--commits`` appends of one small batch through
   posttrain's ``Warehouse.append`` (load the table from the catalog, write, commit), on
   the SQL catalog on Postgres against SQLite (same local warehouse folder kind, so only
   the catalog differs): median and p95.
3. **Object store**: write and read ``--s3-mb`` MB of Parquet through pyarrow's S3
   filesystem (pyiceberg's S3 file IO) against moto's S3 server, against the local disk.

The machine has 2 cores shared with other jobs (the load average is printed first): the
ratios move with the load, and
moto is a Python emulator, not S3: its throughput is a floor for the code path, not a
forecast of AWS.

``--projection MD`` writes the 1 TB projection (``deploy/PROJECTION.md``) derived from the
figures of this run; ``--from-json IN`` re-derives it from a saved run without measuring.

Usage:
    .venv/bin/python bench/scale.py [--dedup-mb 16] [--tokenize-mb 2] [--commits 30]
        [--s3-mb 16] [--repeats 3] [--json OUT] [--projection MD] [--from-json IN]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from posttrain.platform.dedup import DedupConfig
from posttrain.platform.execution import Executor, InProcessExecutor
from posttrain.platform.gold.tokenize import TokenizeConfig
from posttrain.platform.ingest.bronze import DEFAULT_COMMIT_ROWS

DEDUP = DedupConfig()
# Equal batches, an even number of them (both workers get the same work), of a few MB
# each (on a loaded machine Ray's per-task cost swamps small batches).
DEDUP_BATCHES = 4
TOKENIZE_BATCHES = 6


def _rows(table: pa.Table, batches: int) -> int:
    return -(-table.num_rows // batches)


# The cluster shape of the projection. Prices are ASSUMPTIONS: AWS on-demand, Linux,
# us-east-1, as listed on aws.amazon.com/ec2/pricing/on-demand in 2025; check them.
NODE = {"name": "m7i.4xlarge", "vcpus": 16, "memory_gib": 64, "usd_per_hour": 0.8064}
BIG_DRIVER = {"name": "r7i.16xlarge", "vcpus": 64, "memory_gib": 512, "usd_per_hour": 4.2336}
NODES = 8
CORPUS_BYTES = 1e12  # 1 TB of text


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


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- 1. Ray scaling ---------------------------------------------------------------------


def _dedup_phases(table: pa.Table, executor: Executor) -> dict[str, float]:
    """One dedup, timed in its two parts: fingerprints (executor) and graph (driver)."""
    from posttrain.platform.dedup.dedup import _fingerprint, _nodes
    from posttrain.platform.dedup.graph import build_graph
    from posttrain.platform.dedup.outcome import decide
    from posttrain.platform.dedup.published import PublishedIndex

    started = time.perf_counter()
    fingerprints, _ = _fingerprint(table, "text", DEDUP, executor, _rows(table, DEDUP_BATCHES))
    mapped = time.perf_counter()
    nodes = _nodes(fingerprints, PublishedIndex.empty(DEDUP), DEDUP)
    decide(nodes, build_graph(nodes, DEDUP), DEDUP)
    return {"map_s": mapped - started, "driver_s": time.perf_counter() - mapped}


def dedup_run(table: pa.Table, executor: Executor, repeats: int) -> dict[str, Any]:
    """Best-of-``repeats`` fingerprint and graph times (digest: :func:`dedup_digest`)."""
    runs = [_dedup_phases(table, executor) for _ in range(repeats)]
    map_s = min(r["map_s"] for r in runs)
    driver_s = min(r["driver_s"] for r in runs)
    return {"seconds": map_s + driver_s, "map_s": map_s, "driver_s": driver_s}


def dedup_digest(table: pa.Table, executor: Executor) -> str:
    """Digest of one whole ``deduplicate``: its assignments and rejections."""
    from posttrain.platform.dedup import deduplicate

    result = deduplicate(
        table, DEDUP, executor, text_column="text", batch_rows=_rows(table, DEDUP_BATCHES)
    )
    return _digest(result.assignments) + _digest(result.rejected)


def driver_memory(table: pa.Table) -> dict[str, float]:
    """Bytes the driver holds per document for the duplicate graph (in-process, untimed).

    The fingerprint table (Arrow: record id, exact hash, signature) stays alive through the
    graph; ``tracemalloc`` measures the peak of the numpy buffers built on top of it.
    """
    from posttrain.platform.dedup.dedup import _fingerprint, _nodes
    from posttrain.platform.dedup.graph import build_graph
    from posttrain.platform.dedup.outcome import decide
    from posttrain.platform.dedup.published import PublishedIndex

    fingerprints, _ = _fingerprint(
        table, "text", DEDUP, InProcessExecutor(), _rows(table, DEDUP_BATCHES)
    )
    tracemalloc.start()
    try:
        nodes = _nodes(fingerprints, PublishedIndex.empty(DEDUP), DEDUP)
        decide(nodes, build_graph(nodes, DEDUP), DEDUP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows = table.num_rows
    return {
        "signature_bytes_per_doc": 4 * DEDUP.num_perm,
        "fingerprint_bytes_per_doc": fingerprints.nbytes / rows,
        "graph_peak_bytes_per_doc": peak / rows,
        "driver_bytes_per_doc": (fingerprints.nbytes + peak) / rows,
    }


def tokenize_run(corpus: pa.Table, executor: Executor, repeats: int) -> dict[str, Any]:
    from posttrain.platform.gold.tokenize import tokenize_conversations

    config = TokenizeConfig()
    seconds, result = _best(
        repeats,
        lambda: tokenize_conversations(
            corpus, config, executor, batch_rows=_rows(corpus, TOKENIZE_BATCHES)
        ),
    )
    tokens = int(pc.sum(pc.list_value_length(result.kept.column("input_ids"))).as_py())
    return {"seconds": seconds, "tokens": tokens, "digest": _digest(result.kept)}


def ingest_run(conversations: pa.Table) -> dict[str, float]:
    """``ingest`` of the conversations as one JSONL file into a local warehouse.

    Ingest runs in the driver's process (one core), not on Ray: at 1 TB it is serial.
    """
    from posttrain.platform.ingest.bronze import ingest
    from posttrain.platform.ingest.sources import SourceSpec
    from posttrain.platform.settings import WarehouseSettings
    from posttrain.platform.warehouse import Warehouse

    def write(rows: pa.Table, path: Path) -> Path:
        with path.open("w") as out:
            for row in rows.to_pylist():
                messages = [{k: v for k, v in m.items() if v is not None} for m in row["messages"]]
                out.write(json.dumps({"id": row["record_id"], "messages": messages}) + "\n")
        return path

    with tempfile.TemporaryDirectory() as tmp:
        path = write(conversations, Path(tmp) / "conversations.jsonl")
        warehouse = Warehouse(WarehouseSettings.local(Path(tmp) / "home"))
        # Untimed: the first ingest creates bronze; the timed one is the steady state.
        warm = write(conversations.slice(0, 64), Path(tmp) / "warm.jsonl")
        ingest(warehouse, [SourceSpec(path=warm, source="warmup")])
        started = time.perf_counter()
        report = ingest(warehouse, [SourceSpec(path=path, source="bench")])
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "jsonl_bytes": path.stat().st_size, "rows": report.rows_added}


def _message_bytes(conversations: pa.Table) -> int:
    contents = pc.struct_field(pc.list_flatten(conversations["messages"]), "content")
    return int(pc.sum(pc.binary_length(contents)).as_py() or 0)


def ray_scaling(dedup_mb: float, tokenize_mb: float, repeats: int) -> dict[str, Any]:
    import dedup as dedup_bench
    import tokenization as tokenize_bench

    from posttrain.platform.execution import RayExecutor
    from posttrain.platform.gold.tokenize import tokenize_conversations
    from posttrain.platform.local_stack import start_ray_cluster

    docs = pq.read_table(dedup_bench.build_corpus(dedup_mb))
    conversations = tokenize_bench.build_corpus(tokenize_mb)
    text_bytes = int(pc.sum(pc.binary_length(docs["text"])).as_py())
    message_bytes = _message_bytes(conversations)
    print(
        f"dedup corpus: {docs.num_rows:,} docs, {text_bytes / 1e6:.1f} MB "
        f"({text_bytes / docs.num_rows:,.0f} B/doc); tokenize corpus: "
        f"{conversations.num_rows:,} conversations, {message_bytes / 1e6:.1f} MB "
        f"({message_bytes / conversations.num_rows:,.0f} B/conversation)",
        flush=True,
    )
    results: dict[str, Any] = {
        "docs": docs.num_rows,
        "text_bytes": text_bytes,
        "conversations": conversations.num_rows,
        "message_bytes": message_bytes,
    }
    local = InProcessExecutor()
    # Untimed warm-up: the tokenizer loads once per process.
    tokenize_conversations(conversations.slice(0, 64), TokenizeConfig(), local)
    started = time.perf_counter()
    results["in_process"] = {
        "dedup": {**dedup_run(docs, local, 1), "digest": dedup_digest(docs, local)},
        "tokenize": tokenize_run(conversations, local, 1),
    }
    results["driver_memory"] = driver_memory(docs)
    results["ingest"] = ingest_run(conversations)
    print(f"  in-process runs: {time.perf_counter() - started:.0f} s", flush=True)

    started = time.perf_counter()
    cluster = start_ray_cluster(workers=2, cpus_per_worker=1)
    os.environ.update(cluster.environment())  # the driver joins with the cluster's token
    print(f"  Ray head + 2 workers started in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        import ray

        # One task in flight keeps one worker process busy, two keep both: the same
        # cluster and warm workers for both sides, so rounds can alternate and a burst
        # of load from other jobs does not land on one side only.
        executors = {
            "ray_1": RayExecutor(address=cluster.address, max_in_flight=1),
            "ray_2": RayExecutor(address=cluster.address, max_in_flight=2),
        }
        print(f"  {executors['ray_2'].describe()}", flush=True)
        started = time.perf_counter()
        # Warm-up, untimed, one whole pass: each node starts this job's worker process,
        # which imports the stages and loads the tokenizer.
        _dedup_phases(docs, executors["ray_2"])
        tokenize_conversations(
            conversations,
            TokenizeConfig(),
            executors["ray_2"],
            batch_rows=_rows(conversations, TOKENIZE_BATCHES),
        )
        rounds: dict[str, list[dict[str, Any]]] = {key: [] for key in executors}
        for _ in range(repeats):
            for key, executor in executors.items():
                rounds[key].append(
                    {
                        "dedup": dedup_run(docs, executor, 1),
                        "tokenize": tokenize_run(conversations, executor, 1),
                    }
                )
        for key, runs in rounds.items():
            best = min((r["dedup"] for r in runs), key=lambda d: d["seconds"])
            results[key] = {
                "dedup": {**best, "digest": dedup_digest(docs, executors[key])},
                "tokenize": min((r["tokenize"] for r in runs), key=lambda d: d["seconds"]),
            }
        print(f"  1 and 2 workers measured in {time.perf_counter() - started:.0f} s", flush=True)
        ray.shutdown()
    finally:
        cluster.stop()
    for stage in ("dedup", "tokenize"):
        digests = {results[k][stage]["digest"] for k in ("in_process", "ray_1", "ray_2")}
        if len(digests) != 1:
            raise SystemExit(f"{stage}: outputs differ between in-process and Ray: {digests}")
    return results


# -- 2. Iceberg commit latency ----------------------------------------------------------


def _commit_times_ms(settings: Any, commits: int) -> list[float]:
    """Wall time of each ``Warehouse.append`` (one catalog commit) of a 2-row batch."""
    from posttrain.platform.lineage import Lineage
    from posttrain.platform.warehouse import Warehouse

    schema = pa.schema([pa.field("n", pa.int64(), nullable=False)])
    warehouse = Warehouse(settings)
    warehouse.catalog.create_namespace("bench")
    warehouse.catalog.create_table("bench.commits", schema=schema)
    rows = pa.table({"n": [1, 2]}, schema=schema)
    lineage = Lineage("bench")
    times = []
    for _ in range(commits):
        started = time.perf_counter()
        warehouse.append("bench.commits", rows, lineage)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95}


def commit_latency(commits: int) -> dict[str, dict[str, float]]:
    """Postgres SQL catalog against SQLite, both over a local warehouse folder."""
    from posttrain.platform.local_stack import start_postgres
    from posttrain.platform.warehouse import WarehouseSettings

    started = time.perf_counter()
    postgres = start_postgres(databases=("bench",))
    print(f"  PostgreSQL started in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = _commit_times_ms(WarehouseSettings.local(Path(tmp) / "sqlite"), commits)
            pg = _commit_times_ms(
                WarehouseSettings(
                    catalog_uri=postgres.url("bench"),
                    warehouse=(Path(tmp) / "pg-warehouse").as_uri(),
                ),
                commits,
            )
    finally:
        postgres.stop()
    return {"sqlite": _summary(sqlite), "postgres": _summary(pg)}


# -- 3. Object store --------------------------------------------------------------------


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

    from posttrain.platform.local_stack import start_s3

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


# -- report -----------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    scaling, commits, store = report["ray"], report["commit_ms"], report["object_store"]
    mb, docs = scaling["text_bytes"] / 1e6, scaling["docs"]
    print(
        f"\nload average (1/5/15 min) at start {report['load_start']}, at end "
        f"{report['load_end']}, on {report['cores']} cores; total {report['total_s']:.0f} s"
    )
    print("Ray scaling (2 worker processes of 1 CPU, 1 then 2 tasks in flight; ideal ratio 2.0):")
    for stage in ("dedup", "tokenize"):
        one, two = scaling["ray_1"][stage]["seconds"], scaling["ray_2"][stage]["seconds"]
        local = scaling["in_process"][stage]["seconds"]
        print(
            f"  {stage:9s} in-process {local:6.2f} s | 1 worker {one:6.2f} s | "
            f"2 workers {two:6.2f} s | scaling {one / two:.2f}x of 2.0"
        )
    one, two = scaling["ray_1"]["dedup"], scaling["ray_2"]["dedup"]
    ratio = one["map_s"] / two["map_s"]
    print(f"  dedup fingerprints alone (workers): scaling {ratio:.2f}x of 2.0")
    for key in ("ray_1", "ray_2"):
        d = scaling[key]["dedup"]
        print(
            f"  dedup {key}: fingerprints {d['map_s']:.2f} s (workers, "
            f"{mb / d['map_s']:.2f} MB/s), graph {d['driver_s']:.2f} s (driver), "
            f"{docs / d['seconds']:,.0f} docs/s, {mb / d['seconds']:.2f} MB/s"
        )
    memory = scaling["driver_memory"]
    print(
        f"  driver memory for the dedup graph: {memory['driver_bytes_per_doc']:,.0f} B/doc "
        f"({memory['fingerprint_bytes_per_doc']:,.0f} fingerprint table + "
        f"{memory['graph_peak_bytes_per_doc']:,.0f} graph peak; the signature alone "
        f"{memory['signature_bytes_per_doc']} B)"
    )
    tokens, message_mb = scaling["ray_1"]["tokenize"]["tokens"], scaling["message_bytes"] / 1e6
    for key in ("ray_1", "ray_2"):
        seconds = scaling[key]["tokenize"]["seconds"]
        print(
            f"  tokenize {key}: {tokens / seconds:,.0f} tokens/s, "
            f"{message_mb / seconds:.2f} MB/s of message text"
        )
    print("  outputs byte-identical in-process / 1 worker / 2 workers: yes")
    ingest = scaling["ingest"]
    print(
        f"ingest (driver process, JSONL -> bronze): {ingest['rows']:,} conversations in "
        f"{ingest['seconds']:.2f} s, {message_mb / ingest['seconds']:.2f} MB/s of message text "
        f"({ingest['jsonl_bytes'] / 1e6 / ingest['seconds']:.2f} MB/s of JSONL)"
    )
    pg, lite = commits["postgres"], commits["sqlite"]
    print(
        f"\nIceberg commit latency ({report['commits']} appends through Warehouse.append): "
        f"Postgres median {pg['median_ms']:.1f} ms p95 {pg['p95_ms']:.1f} ms | SQLite median "
        f"{lite['median_ms']:.1f} ms p95 {lite['p95_ms']:.1f} ms | median ratio "
        f"{pg['median_ms'] / lite['median_ms']:.2f}x"
    )
    print(
        f"\nObject store, {report['s3_mb']} MB Parquet: write S3(moto) "
        f"{store['s3_write_mb_s']:.0f} MB/s vs local {store['local_write_mb_s']:.0f} MB/s "
        f"({store['s3_write_mb_s'] / store['local_write_mb_s']:.2f}x); read "
        f"{store['s3_read_mb_s']:.0f} vs {store['local_read_mb_s']:.0f} MB/s "
        f"({store['s3_read_mb_s'] / store['local_read_mb_s']:.2f}x)"
    )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h" if seconds >= 360 else f"{seconds / 60:,.1f} min"


def _efficiency(one_s: float, two_s: float) -> tuple[float, str]:
    """Measured 2-worker efficiency, capped at 1.0: above 1 is load moving between runs."""
    measured = one_s / two_s / 2
    if measured > 1:
        return 1.0, f"{2 * measured:.2f}x of 2.0 (above 2.0: load changed between runs; 1.0 used)"
    return measured, f"{2 * measured:.2f}x of 2.0 (efficiency {measured:.2f})"


def projection(report: dict[str, Any], nodes: int = NODES) -> str:
    """The 1 TB projection as Markdown, every derived figure computed from ``report``."""
    scaling, commits, store = report["ray"], report["commit_ms"], report["object_store"]
    one, two = scaling["ray_1"], scaling["ray_2"]
    memory, ingested = scaling["driver_memory"], scaling["ingest"]
    vcpus = nodes * NODE["vcpus"]
    cluster_usd_h = nodes * NODE["usd_per_hour"]
    gib = 2**30

    # Measured, per core (one Ray worker process = one CPU).
    dedup_core = scaling["text_bytes"] / one["dedup"]["map_s"]  # B/s, fingerprints
    dedup_eff, dedup_note = _efficiency(one["dedup"]["map_s"], two["dedup"]["map_s"])
    tok_core = scaling["message_bytes"] / one["tokenize"]["seconds"]
    tok_eff, tok_note = _efficiency(one["tokenize"]["seconds"], two["tokenize"]["seconds"])
    ingest_core = scaling["message_bytes"] / ingested["seconds"]
    doc_bytes = scaling["text_bytes"] / scaling["docs"]
    conv_bytes = scaling["message_bytes"] / scaling["conversations"]
    graph_s_per_doc = one["dedup"]["driver_s"] / scaling["docs"]
    driver_b = memory["driver_bytes_per_doc"]
    pg_p95_s = commits["postgres"]["p95_ms"] / 1000
    s3_read, s3_write = store["s3_read_mb_s"] * 1e6, store["s3_write_mb_s"] * 1e6

    # Derived at 1 TB (rows sized like the dedup corpus; conversations as a second case).
    docs_tb = CORPUS_BYTES / doc_bytes
    convs_tb = CORPUS_BYTES / conv_bytes
    t_ingest = CORPUS_BYTES / ingest_core
    t_map = CORPUS_BYTES / (dedup_core * vcpus * dedup_eff)
    t_graph = docs_tb * graph_s_per_doc
    t_graph_convs = convs_tb * graph_s_per_doc
    t_tok = CORPUS_BYTES / (tok_core * vcpus * tok_eff)
    bronze_commits = math.ceil(docs_tb / DEFAULT_COMMIT_ROWS)
    t_commits = bronze_commits * pg_p95_s
    # Read once per stage that reads the corpus (dedup, tokenize), written once (bronze):
    # one stream per vCPU at moto's single-stream rate.
    t_read = 2 * CORPUS_BYTES / (s3_read * vcpus)
    t_write = CORPUS_BYTES / (s3_write * vcpus)
    mem_docs = docs_tb * driver_b
    mem_convs = convs_tb * driver_b
    stages = {
        "ingest JSONL → bronze (driver, one core)": t_ingest,
        "bronze commits on Postgres (serial, p95)": t_commits,
        "dedup fingerprints (workers)": t_map,
        "dedup graph (driver, one core)": t_graph,
        "tokenization (workers)": t_tok,
        "S3 reads + writes (one stream per vCPU)": t_read + t_write,
    }
    bound = max(stages, key=lambda k: stages[k])
    total = sum(stages.values())
    parallel_ingest = t_ingest / (vcpus * tok_eff)
    with_parallel_ingest = {**stages, "ingest JSONL → bronze (driver, one core)": parallel_ingest}
    next_bound = max(with_parallel_ingest, key=lambda k: with_parallel_ingest[k])
    total_parallel = sum(with_parallel_ingest.values())

    def fits(size: float, machine: dict[str, Any]) -> str:
        return "fits" if size <= machine["memory_gib"] * gib else "does **not** fit"

    load = report["load_start"]
    lines = [
        "# Projection: a 1 TB corpus on a cluster",
        "",
        "Generated by `.venv/bin/python bench/scale.py --json deploy/scale-bench.json "
        "--projection deploy/PROJECTION.md` from the figures of one run "
        f"(`{report.get('json', 'deploy/scale-bench.json')}`); that one command re-measures "
        "and rewrites every number below (`--from-json deploy/scale-bench.json --projection "
        "deploy/PROJECTION.md` re-derives them without measuring). Nothing is guessed except "
        "the lines marked **assumption**.",
        "",
        f"**Measured under load**: load average {load[0]} / {load[1]} / {load[2]} (1 / 5 / 15 "
        f"min) at the start of the run, {report['load_end'][0]} at its end, on "
        f"{report['cores']} cores shared with other jobs. Every figure below (throughputs, "
        "scaling ratios, commit latencies, S3 rates) was measured under that load: "
        "throughputs are pessimistic, and the 1 vs 2 worker ratios are noisy (the rounds "
        "alternate, but other jobs take the cores from the workers at random).",
        "",
        "## Verdict",
        "",
        (
            "- **Feasibility is bounded by the driver's memory**"
            if mem_docs > NODE["memory_gib"] * gib
            else "- The driver's memory does not bound it"
        )
        + f": dedup holds {driver_b:,.0f} B per document in one process, "
        f"{mem_docs / gib:,.0f} GiB at 1 TB ({mem_convs / gib:,.0f} GiB for "
        f"conversation-sized rows), against {NODE['memory_gib']} GiB on a {NODE['name']}; "
        "a band-sharded LSH (below) removes that limit.",
        f"- **Wall time is bounded by {bound}**: {_hours(stages[bound])} of "
        f"{_hours(total)} (${total / 3600 * cluster_usd_h:,.0f} on {nodes} × {NODE['name']}, "
        f"plus ${total / 3600 * BIG_DRIVER['usd_per_hour']:,.0f} for a "
        f"{BIG_DRIVER['name']} head big enough for document-sized rows).",
        f"- With ingest on the workers: {_hours(total_parallel)} "
        f"(${total_parallel / 3600 * cluster_usd_h:,.0f}), bounded by {next_bound}.",
        "",
        "## Cluster shape (assumption)",
        "",
        f"- {nodes} × AWS **{NODE['name']}** ({NODE['vcpus']} vCPU, {NODE['memory_gib']} GiB) as "
        f"Ray worker nodes: {vcpus} vCPUs, one Ray worker process per vCPU. "
        f"**Assumption**: ${NODE['usd_per_hour']}/h each on demand (Linux, us-east-1, AWS's "
        f"list price in 2025; check it), ${cluster_usd_h:.2f}/h for the cluster.",
        "- **Assumption**: one vCPU there does the work of one core of this machine "
        "(per-core throughput carries over unchanged).",
        "- **Assumption**: the 2-worker scaling efficiency measured here holds at "
        f"{vcpus} workers (no measurement beyond 2 workers exists on a 2-core machine).",
        "- **Assumption**: S3 serves one stream per vCPU at the measured moto rate (moto is "
        "an emulator; AWS S3 per-stream rates are usually higher, so this is a floor).",
        "- The corpus is 1 TB of text, in rows the size of the dedup corpus's documents; "
        "throughputs are per byte, so only the driver's figures (graph time, memory) "
        "depend on the row size, and they are also given for conversation-sized rows.",
        "",
        "## Measured → derived",
        "",
        "| measured (this run) | value | derived for 1 TB | value |",
        "|---|---|---|---|",
        f"| dedup corpus bytes per document | {doc_bytes:,.0f} B | documents in 1 TB "
        f"(1e12 / B per doc) | {docs_tb:,.3g} |",
        f"| conversation corpus bytes per conversation | {conv_bytes:,.0f} B | conversations "
        f"in 1 TB | {convs_tb:,.3g} |",
        f"| ingest JSONL → bronze, one process | {ingest_core / 1e6:.2f} MB/s of message text "
        f"| 1e12 B / rate (serial: ingest is not on Ray) | {_hours(t_ingest)} |",
        f"| dedup fingerprints, 1 worker | {dedup_core / 1e6:.2f} MB/s per core | 1e12 B / "
        f"(rate × {vcpus} vCPU × efficiency {dedup_eff:.2f}) | {_hours(t_map)} |",
        f"| dedup fingerprints scaling 1 → 2 workers | {dedup_note} | (used above) | |",
        f"| dedup graph on the driver, 1 core | {graph_s_per_doc * 1e6:.1f} µs per document | "
        f"× {docs_tb:,.3g} documents (linear; the LSH sorts are n log n: a floor) | "
        f"{_hours(t_graph)} ({_hours(t_graph_convs)} for conversations) |",
        f"| tokenization, 1 worker | {tok_core / 1e6:.2f} MB/s per core | 1e12 B / (rate × "
        f"{vcpus} vCPU × efficiency {tok_eff:.2f}) | {_hours(t_tok)} |",
        f"| tokenization scaling 1 → 2 workers | {tok_note} | (used above) | |",
        f"| driver memory for the dedup graph | {driver_b:,.0f} B per document | × "
        f"{docs_tb:,.3g} documents | {mem_docs / gib:,.0f} GiB |",
        f"| (same, conversation-sized rows) | {driver_b:,.0f} B per row | × {convs_tb:,.3g} "
        f"conversations | {mem_convs / gib:,.0f} GiB |",
        f"| Iceberg commit on Postgres, p95 | {pg_p95_s * 1000:.1f} ms (median "
        f"{commits['postgres']['median_ms']:.1f}; SQLite p95 {commits['sqlite']['p95_ms']:.1f}, "
        f"median {commits['sqlite']['median_ms']:.1f}) | × {bronze_commits:,} bronze commits "
        f"({DEFAULT_COMMIT_ROWS:,} rows each) | {_hours(t_commits)} |",
        f"| S3 (moto) read, one stream | {s3_read / 1e6:.0f} MB/s (local disk "
        f"{store['local_read_mb_s']:.0f}) | 2 × 1e12 B / (rate × {vcpus} streams) | "
        f"{_hours(t_read)} |",
        f"| S3 (moto) write, one stream | {s3_write / 1e6:.0f} MB/s (local disk "
        f"{store['local_write_mb_s']:.0f}) | 1e12 B / (rate × {vcpus} streams) | "
        f"{_hours(t_write)} |",
        "",
        "## Wall time and cost",
        "",
        "The stages run one after the other (ingest → silver dedup → gold tokenization), so "
        "the wall time is their sum:",
        "",
        "| stage | wall time |",
        "|---|---|",
        *[f"| {name} | {_hours(seconds)} |" for name, seconds in stages.items()],
        f"| **total** | **{_hours(total)}** |",
        "",
        f"**Bounding stage: {bound}** ({_hours(stages[bound])} of {_hours(total)}). "
        f"Cost: {_hours(total)} × ${cluster_usd_h:.2f}/h = "
        f"**${total / 3600 * cluster_usd_h:,.0f}** for the {nodes} worker nodes, most of "
        "them idle while a serial stage runs.",
        "",
        f"Ingest reads the raw files in the driver's process, file after file. If it ran "
        f"on the workers like the other stages (one task per file or byte range, at the "
        f"measured per-core rate and the tokenizer's efficiency: **assumption**), it would "
        f"take {_hours(parallel_ingest)}, the total {_hours(total_parallel)} "
        f"(${total_parallel / 3600 * cluster_usd_h:,.0f}), bounded by {next_bound}.",
        "",
        "The dedup graph's line assumes a head that can hold it (next section). The ingest "
        "rate was measured into a local SQLite warehouse; its bronze commits at scale are "
        "the Postgres line. Not included (not measured by this bench): silver validation, "
        "redaction and decontamination, packing, the Dagster run launcher and step "
        "start-up.",
        "",
        "## The driver's memory bounds dedup today",
        "",
        f"`deduplicate` fingerprints on the workers but builds the duplicate graph on the "
        f"driver from every signature ({memory['signature_bytes_per_doc']} B at "
        f"{DEDUP.num_perm} permutations; {driver_b:,.0f} B per document measured, the "
        f"fingerprint table plus the graph's numpy peak: the signature matrix is copied "
        f"while the graph is built). At 1 TB that is **{mem_docs / gib:,.0f} GiB** on one "
        f"process for {doc_bytes:,.0f}-byte documents, **{mem_convs / gib:,.0f} GiB** for "
        f"{conv_bytes:,.0f}-byte conversations.",
        "",
        f"- A {NODE['name']} head ({NODE['memory_gib']} GiB): for documents it "
        f"{fits(mem_docs, NODE)}, for conversations it {fits(mem_convs, NODE)}.",
        f"- A {BIG_DRIVER['name']} head ({BIG_DRIVER['memory_gib']} GiB, **assumption** "
        f"${BIG_DRIVER['usd_per_hour']}/h): for documents it {fits(mem_docs, BIG_DRIVER)}, "
        f"for conversations it {fits(mem_convs, BIG_DRIVER)}.",
        "",
        (
            "**So yes: at 1 TB the driver's memory bounds dedup, before any throughput "
            "does.** The run as the code stands cannot finish on this cluster shape."
        )
        if mem_docs > NODE["memory_gib"] * gib
        else "At this size the driver's memory does not bound dedup on one head node.",
        "",
        "The step that removes the bound is a **band-sharded LSH** (not implemented): "
        "the workers emit, for every document and every one of the "
        f"{DEDUP.bands} bands, `(band, band key, node id)` (8 + 8 + 8 B); a shuffle by "
        "`hash(band, key)` sends each bucket to one worker, which pairs its members (the "
        "same window as `lsh._bucket_pairs`) and verifies each candidate pair by fetching "
        "both signatures from the fingerprint table on the object store "
        "(`silver.conversations.minhash`, already written). Only the verified edges (16 B "
        "per pair) return to the driver for the union-find over node ids (8 B per "
        f"document: {docs_tb * 8 / gib:,.0f} GiB for documents), or a distributed "
        "connected-components pass when even that is too much. The result stays "
        "byte-identical because the keeper rule only needs the clusters. If the sharded "
        "graph parallelised like the fingerprints (**assumption**), its "
        f"{_hours(t_graph)} would become {_hours(t_graph / (vcpus * dedup_eff))}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dedup-mb", type=float, default=16)
    parser.add_argument("--tokenize-mb", type=float, default=2)
    parser.add_argument("--commits", type=int, default=30)
    parser.add_argument("--s3-mb", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--projection", type=Path, help="write the 1 TB projection here (.md)")
    parser.add_argument("--nodes", type=int, default=NODES, help="worker nodes projected")
    parser.add_argument(
        "--from-json", type=Path, help="do not measure: report (and project) a saved run"
    )
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        report["json"] = str(args.from_json)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        load_start = _load()
        print(f"load average {load_start} (1/5/15 min) on {os.cpu_count()} cores", flush=True)
        started = time.perf_counter()
        scaling = ray_scaling(args.dedup_mb, args.tokenize_mb, args.repeats)
        mark = time.perf_counter()
        commits = commit_latency(args.commits)
        print(f"  commit latency measured in {time.perf_counter() - mark:.0f} s", flush=True)
        mark = time.perf_counter()
        store = object_store(args.s3_mb)
        print(f"  object store measured in {time.perf_counter() - mark:.0f} s", flush=True)
        report = {
            "ray": scaling,
            "commit_ms": commits,
            "object_store": store,
            "commits": args.commits,
            "s3_mb": args.s3_mb,
            "load_start": load_start,
            "load_end": _load(),
            "cores": os.cpu_count(),
            "total_s": time.perf_counter() - started,
        }
        if args.json:
            report["json"] = str(args.json)
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_report(report)
    if args.projection:
        args.projection.write_text(projection(report, args.nodes))
        print(f"\nprojection written to {args.projection}")


if __name__ == "__main__":
    main()
