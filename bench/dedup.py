"""Near-duplicate benchmark: posttrain dedup against datasketch MinHash + MinHashLSH.

Both tools run the whole near-dup path on the same ≥ 100 MB of real text, with the same
word 5-gram shingles and the same parameters (num_perm, bands × rows, threshold, seed):

* **posttrain**: ``deduplicate`` end to end (normalize, exact hash, shingle, MinHash,
  LSH, verify, union-find, keeper rule, rejection rows), on a local Ray runtime with 2
  CPUs (start-up excluded), and also in-process on 1 CPU.
* **datasketch**: the same words (posttrain's vectorized normalizer, timed with it) →
  n-gram strings → ``MinHash(num_perm, seed).update_batch`` (its default SHA-1 hashing)
  → ``MinHashLSH(threshold, num_perm, params=(bands, rows))`` insert, then ``query`` per
  document, candidates verified with ``MinHash.jaccard`` ≥ threshold, union-find with the
  same keeper rule. One CPU: datasketch has no parallel mode.
* **datasketch fed posttrain's shingle hashes**: the same, but ``update_batch`` gets
  posttrain's vectorized 64-bit shingle hashes (``hashfunc=int``) instead of strings: the
  strongest datasketch pipeline we could build, reported beside the target ratio.

Each tool runs in its own subprocess so peak RSS (``getrusage``) is its own; Ray workers'
RSS is sampled with psutil. Each is timed ``--repeats`` times and the best run counts (the
machine may be shared). posttrain sends 2,048-row batches to the executor. A quality pass
then scores both tools on the labelled pairs of ``tests/data/near_dup_pairs.jsonl.gz``.

The corpus is the Python source of the project venv's pinned packages, cut at line ends
into documents of 1–8 KB (``posttrain/platform/dedup/venv_text.py``), cached in ``bench/.cache/``.

With ``--cli`` it measures what a user waits for instead: the whole ``posttrain dedup``
process (start-up, reading the Parquet file, default options, writing the annotated
output) on ``--mb`` MB (70 by default there), timed from outside, against datasketch's
in-process time on the same corpus (the child's own clock: no start-up, no file reading).
The two alternate, ``--repeats`` pairs, and the ratio is taken pair by pair, so load from
other processes falls on both sides; the median pair is reported. Precision and recall
are then scored on the labelled pairs run through the same command.

Usage:
    .venv/bin/python bench/dedup.py [--mb 100] [--workers 2] [--repeats 3] [--datasketch-mb MB]
    .venv/bin/python bench/dedup.py --cli [--mb 70] [--repeats 5]
"""

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.dedup import DedupConfig, deduplicate
from posttrain.platform.dedup.evaluation import (
    load_labelled_pairs,
    pair_documents,
    score_pairs,
)
from posttrain.platform.dedup.minhash import shingle_hashes, word_hashes
from posttrain.platform.dedup.normalize import normal_form, words
from posttrain.platform.execution import InProcessExecutor, RayExecutor

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
LABELLED = REPO / "tests" / "data" / "near_dup_pairs.jsonl.gz"
SEED = 20261125

CONFIG = DedupConfig()
BATCH_ROWS = 2048  # ~8 MB of text per task: enough tasks to keep every Ray worker busy


# ---- corpus --------------------------------------------------------------------------


def build_corpus(megabytes: float) -> Path:
    """Venv source cut into 1–8 KB documents, at least ``megabytes`` MB of UTF-8 text."""
    from posttrain.platform.dedup.venv_text import iter_code_chunks

    path = CACHE / f"dedup_corpus_{megabytes:g}mb.parquet"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    texts, sources, size = [], [], 0
    for chunk in iter_code_chunks(random.Random(SEED), 1000, 8000):
        texts.append(chunk.text)
        sources.append(chunk.path)
        size += len(chunk.text.encode())
        if size >= megabytes * 1e6:
            break
    ids = [f"doc-{index:08d}" for index in range(len(texts))]
    table = pa.table({"record_id": ids, "text": texts, "source": sources})
    pq.write_table(table, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return path


def corpus_summary(table: pa.Table) -> tuple[float, str]:
    """Megabytes of UTF-8 text and a short digest of it (same venv, same digest)."""
    digest = hashlib.sha256()
    size = 0
    for text in table["text"].to_pylist():
        encoded = text.encode()
        size += len(encoded)
        digest.update(encoded)
    return size / 1e6, digest.hexdigest()[:12]


# ---- peak memory ---------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WorkerMemory:
    """Samples the summed RSS of this process's Ray worker processes (``ray::*``)."""

    def __init__(self, interval_s: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float:
        total = 0
        for child in self._me.children(recursive=True):
            try:
                if child.name().startswith("ray::"):
                    total += child.memory_info().rss
            except Exception:  # a worker may exit between listing and reading
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> "WorkerMemory":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# ---- datasketch baseline -------------------------------------------------------------


def _shingle_bytes(texts: pa.Array, ngram: int, batch_rows: int = 2048) -> Iterator[list[bytes]]:
    """Each document's word n-grams as bytes, the words normalized as posttrain does."""
    for start in range(0, len(texts), batch_rows):
        flat, offsets = words(normal_form(texts[start : start + batch_rows]))
        flat_words = flat.to_pylist()
        for first, stop in pairwise(offsets.tolist()):
            doc = flat_words[first:stop]
            if len(doc) < ngram:
                yield [" ".join(doc).encode()] if doc else []
            else:
                yield [" ".join(doc[i : i + ngram]).encode() for i in range(len(doc) - ngram + 1)]


def _shingle_hashes(texts: pa.Array, ngram: int, batch_rows: int = 2048) -> Iterator[list[int]]:
    """Each document's shingles as posttrain hashes them (high 32 bits), for datasketch."""
    for start in range(0, len(texts), batch_rows):
        flat_words, offsets = words(normal_form(texts[start : start + batch_rows]))
        flat, shingle_offsets = shingle_hashes(word_hashes(flat_words), offsets, ngram)
        values: list[int] = (flat >> np.uint64(32)).tolist()
        for first, stop in pairwise(shingle_offsets.tolist()):
            yield values[first:stop]


def _find(parent: dict[str, str], key: str) -> str:
    while parent[key] != key:
        parent[key] = parent[parent[key]]
        key = parent[key]
    return key


def datasketch_clusters(
    table: pa.Table, config: DedupConfig, prehashed: bool = False
) -> dict[str, str]:
    """record_id → cluster id (smallest record_id of the cluster), with datasketch.

    By default datasketch hashes the n-gram strings itself (SHA-1, its default); with
    ``prehashed`` it is given posttrain's vectorized shingle hashes instead.
    """
    from datasketch import MinHash, MinHashLSH

    ids = table["record_id"].to_pylist()
    texts = table["text"].combine_chunks()
    lsh = MinHashLSH(
        threshold=config.threshold,
        num_perm=config.num_perm,
        params=(config.bands, config.rows_per_band),
    )
    template = MinHash(num_perm=config.num_perm, seed=config.seed)
    options: dict[str, Any] = {"permutations": template.permutations, "scheme": template.scheme}
    if prehashed:
        options["hashfunc"] = int
    shingle_lists: Iterator[list[Any]] = (
        _shingle_hashes(texts, config.ngram) if prehashed else _shingle_bytes(texts, config.ngram)
    )
    sketches: dict[str, Any] = {}
    for record_id, shingles in zip(ids, shingle_lists, strict=True):
        if shingles:
            sketch = MinHash(num_perm=config.num_perm, seed=config.seed, **options)
            sketch.update_batch(shingles)
            lsh.insert(record_id, sketch)
            sketches[record_id] = sketch
    parent = {record_id: record_id for record_id in ids}
    for record_id, sketch in sketches.items():
        for other in lsh.query(sketch):
            if other != record_id and sketch.jaccard(sketches[other]) >= config.threshold:
                low, high = sorted((_find(parent, record_id), _find(parent, other)))
                parent[high] = low
    return {record_id: _find(parent, record_id) for record_id in ids}


# ---- posttrain -----------------------------------------------------------------------


def _best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The shortest wall time of ``repeats`` runs (the machine may be shared), and a result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def posttrain_run(table: pa.Table, workers: int, repeats: int) -> dict[str, Any]:
    """Time posttrain dedup: in-process on 1 CPU, or on a local Ray runtime."""
    executor: Any = RayExecutor(num_cpus=workers) if workers > 1 else InProcessExecutor()
    # Start-up is not timed: start the workers and import the dedup code in each.
    deduplicate(table.slice(0, 64), CONFIG, executor, text_column="text", batch_rows=8)
    with WorkerMemory() as workers_memory:
        seconds, result = _best_of(
            repeats,
            lambda: deduplicate(table, CONFIG, executor, text_column="text", batch_rows=BATCH_ROWS),
        )
    executor.close()
    stats = result.stats
    return {
        "seconds": seconds,
        "workers_peak_mb": workers_memory.peak_mb,
        "kept": stats.kept,
        "exact": stats.exact_duplicates,
        "near": stats.near_duplicates,
        "clusters": stats.clusters,
        "candidate_pairs": stats.candidate_pairs,
    }


# ---- child processes -----------------------------------------------------------------


def child(
    tool: str, corpus: Path, workers: int, limit_mb: float | None, repeats: int
) -> dict[str, Any]:
    """Timed runs of one tool in this (fresh) process."""
    table = pq.read_table(corpus)
    if limit_mb is not None:
        table = table.slice(0, _rows_for(table, limit_mb))
    megabytes, _ = corpus_summary(table)
    if tool.startswith("datasketch"):
        prehashed = tool == "datasketch-prehashed"
        seconds, clusters = _best_of(
            repeats, lambda: datasketch_clusters(table, CONFIG, prehashed=prehashed)
        )
        stats: dict[str, Any] = {
            "seconds": seconds,
            "workers_peak_mb": 0.0,
            "kept": sum(1 for record_id, root in clusters.items() if record_id == root),
        }
    else:
        stats = posttrain_run(table, workers, repeats)
    return {**stats, "docs": table.num_rows, "mb": megabytes, "driver_peak_mb": peak_rss_mb()}


def _rows_for(table: pa.Table, megabytes: float) -> int:
    size = 0
    texts: list[str] = table["text"].to_pylist()
    for index, text in enumerate(texts):
        size += len(text.encode())
        if size >= megabytes * 1e6:
            return index + 1
    rows: int = table.num_rows
    return rows


def run_child(
    tool: str, corpus: Path, workers: int, limit_mb: float | None, repeats: int
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        tool,
        "--corpus",
        str(corpus),
        "--workers",
        str(workers),
        "--repeats",
        str(repeats),
    ]
    if limit_mb is not None:
        command += ["--limit-mb", str(limit_mb)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


# ---- quality -------------------------------------------------------------------------


def quality(run: Callable[[pa.Table], dict[str, str]]) -> tuple[float, float]:
    pairs = load_labelled_pairs(LABELLED)
    scores = score_pairs(pairs, run(pair_documents(pairs)))
    return scores.precision, scores.recall


def _posttrain_quality(table: pa.Table) -> dict[str, str]:
    result = deduplicate(table, CONFIG, InProcessExecutor(), text_column="text")
    return dict(
        zip(
            result.assignments["record_id"].to_pylist(),
            result.assignments["cluster_id"].to_pylist(),
            strict=True,
        )
    )


# ---- the whole command ---------------------------------------------------------------

POSTTRAIN = Path(sys.executable).with_name("posttrain")


def cli_run(corpus: Path, out: Path) -> float:
    """Wall seconds of one whole ``posttrain dedup`` process, default options."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    subprocess.run(
        [str(POSTTRAIN), "dedup", str(corpus), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - start


def cli_quality(folder: Path) -> tuple[float, float]:
    """Precision and recall of ``posttrain dedup`` (default options) on the labelled pairs."""
    pairs = load_labelled_pairs(LABELLED)
    documents, out = folder / "labelled.parquet", folder / "labelled_out.parquet"
    pq.write_table(pair_documents(pairs), documents)
    cli_run(documents, out)
    result = pq.read_table(out, columns=["record_id", "cluster_id"])
    cluster_of = dict(
        zip(result["record_id"].to_pylist(), result["cluster_id"].to_pylist(), strict=True)
    )
    scores = score_pairs(pairs, cluster_of)
    return scores.precision, scores.recall


def cli_main(megabytes: float, repeats: int) -> None:
    """The whole command against datasketch in-process, alternating, ratio per pair."""
    corpus = build_corpus(megabytes)
    table = pq.read_table(corpus, columns=["text"])
    size, digest = corpus_summary(table)
    print(
        f"corpus: {table.num_rows:,} documents, {size:.1f} MB of venv Python source "
        f"(sha256 {digest}); {corpus.relative_to(REPO)}",
        flush=True,
    )
    print(f"machine: {_load()} at the start; {_normalizer()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="posttrain-bench-") as tmp:
        folder = Path(tmp)
        ours, theirs, ratios = [], [], []
        for index in range(repeats):
            cli_seconds = cli_run(corpus, folder / "out.parquet")
            ds_seconds = run_child("datasketch", corpus, 1, None, 1)["seconds"]
            ours.append(cli_seconds)
            theirs.append(ds_seconds)
            ratios.append(ds_seconds / cli_seconds)
            print(
                f"pair {index + 1}: posttrain dedup (whole process) {cli_seconds:.2f} s; "
                f"datasketch in-process {ds_seconds:.2f} s; ratio {ds_seconds / cli_seconds:.1f}x",
                flush=True,
            )
        precision, recall = cli_quality(folder)
    their_p, their_r = quality(lambda docs: datasketch_clusters(docs, CONFIG))
    print(
        f"quality on {LABELLED.name}: posttrain dedup precision {precision:.3f} recall "
        f"{recall:.3f}; datasketch precision {their_p:.3f} recall {their_r:.3f}"
    )
    print(
        f"posttrain dedup, whole process, default options: median {statistics.median(ours):.2f} s "
        f"({size / statistics.median(ours):.1f} MB/s); datasketch in-process: median "
        f"{statistics.median(theirs):.2f} s ({size / statistics.median(theirs):.1f} MB/s)"
    )
    print(
        f"ratio datasketch time / posttrain dedup time, per pair: "
        f"{', '.join(f'{r:.1f}x' for r in ratios)}; median {statistics.median(ratios):.1f}x "
        "(target >= 8x)"
    )
    print(f"machine: {_load()} at the end")


def _normalizer() -> str:
    from posttrain.platform.dedup._ascii import HAS_NATIVE

    if HAS_NATIVE:
        return "ASCII normalizer and shingles: the C extension (csrc/fastnorm.c)"
    return "ASCII normalizer and shingles: numpy (the C extension is not built)"


def _load() -> str:
    """CPUs and load average: other processes slow both tools, the CLI's threads more."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min), {five:.1f} (5 min)"


# ---- report --------------------------------------------------------------------------


def _line(name: str, run: dict[str, Any]) -> str:
    workers = f" + Ray workers {run['workers_peak_mb']:,.0f} MB" if run["workers_peak_mb"] else ""
    return (
        f"{name}: {run['seconds']:.1f} s, {run['docs'] / run['seconds']:,.0f} docs/s, "
        f"{run['mb'] / run['seconds']:.2f} MB/s on {run['docs']:,} docs / {run['mb']:.1f} MB; "
        f"peak RSS driver {run['driver_peak_mb']:,.0f} MB{workers}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=float, default=None, help="corpus size in MB of text (100; 70 with --cli)"
    )
    parser.add_argument(
        "--cli",
        action="store_true",
        help="time the whole `posttrain dedup` process against datasketch in-process",
    )
    parser.add_argument("--workers", type=int, default=2, help="Ray CPUs for posttrain")
    parser.add_argument(
        "--datasketch-mb",
        type=float,
        default=None,
        help="run datasketch on the first MB only (default: the whole corpus)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per tool; the best counts (default 3). With --cli: alternating pairs, the "
        "median pair's ratio counts (default 5: a 1.5 s command moves with the load)",
    )
    tools = ("posttrain", "datasketch", "datasketch-prehashed")
    parser.add_argument("--child", choices=tools, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--limit-mb", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 5 if args.cli else 3
    if args.child:
        print(json.dumps(child(args.child, args.corpus, args.workers, args.limit_mb, args.repeats)))
        return
    if args.cli:
        cli_main(args.mb or 70.0, args.repeats)
        return

    corpus = build_corpus(args.mb or 100.0)
    table = pq.read_table(corpus)
    megabytes, digest = corpus_summary(table)
    print(
        f"corpus: {table.num_rows:,} documents, {megabytes:.1f} MB of venv Python source "
        f"(1–8 KB each, sha256 {digest}); {corpus.relative_to(REPO)}; {_normalizer()}",
        flush=True,
    )
    ours = run_child("posttrain", corpus, args.workers, None, args.repeats)
    print(_line(f"posttrain (Ray, {args.workers} CPUs)", ours), flush=True)
    ours_single = run_child("posttrain", corpus, 1, None, args.repeats)
    print(_line("posttrain (in-process, 1 CPU)", ours_single), flush=True)
    theirs = run_child("datasketch", corpus, 1, args.datasketch_mb, args.repeats)
    print(_line("datasketch (1 CPU)", theirs), flush=True)
    hybrid = run_child("datasketch-prehashed", corpus, 1, args.datasketch_mb, args.repeats)
    print(_line("datasketch fed posttrain's shingle hashes (1 CPU)", hybrid), flush=True)
    our_p, our_r = quality(_posttrain_quality)
    their_p, their_r = quality(lambda docs: datasketch_clusters(docs, CONFIG))

    def ratio(ours_run: dict[str, Any], their_run: dict[str, Any]) -> float:
        return float(
            (ours_run["docs"] / ours_run["seconds"]) / (their_run["docs"] / their_run["seconds"])
        )

    sample = (
        "" if args.datasketch_mb is None else f" (datasketch on the first {theirs['mb']:.0f} MB)"
    )
    print(
        f"parameters: word {CONFIG.ngram}-grams, num_perm {CONFIG.num_perm}, "
        f"{CONFIG.bands} bands x {CONFIG.rows_per_band} rows, threshold {CONFIG.threshold}, "
        f"seed {CONFIG.seed}; posttrain batches of {BATCH_ROWS:,} rows"
    )
    print(
        f"posttrain found {ours['exact']:,} exact + {ours['near']:,} near duplicates in "
        f"{ours['clusters']:,} clusters ({ours['candidate_pairs']:,} candidate pairs); "
        f"kept {ours['kept']:,}; datasketch kept {theirs['kept']:,}{sample}"
    )
    print(
        f"quality on {LABELLED.name}: posttrain precision {our_p:.3f} recall {our_r:.3f}; "
        f"datasketch precision {their_p:.3f} recall {their_r:.3f}"
    )
    print(
        f"peak RSS: posttrain driver {ours['driver_peak_mb']:,.0f} MB + Ray workers "
        f"{ours['workers_peak_mb']:,.0f} MB; posttrain 1 CPU "
        f"{ours_single['driver_peak_mb']:,.0f} MB; datasketch {theirs['driver_peak_mb']:,.0f} MB"
    )
    print(
        f"ratio posttrain/datasketch docs/s: {ratio(ours, theirs):.1f}x on {args.workers} CPUs "
        f"(target >= 5x), {ratio(ours_single, theirs):.1f}x on 1 CPU; against datasketch fed "
        f"posttrain's shingle hashes: {ratio(ours, hybrid):.1f}x on {args.workers} CPUs, "
        f"{ratio(ours_single, hybrid):.1f}x on 1 CPU{sample}"
    )


if __name__ == "__main__":
    main()
