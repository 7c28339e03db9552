"""One executor interface for the heavy stages: in-process or on Ray, same output.

An executor maps a picklable callable over Arrow record batches and yields the results
**in input order**, so the output never depends on how many workers ran or which finished
first. It only shards: stages, chaining and the per-record guard live in
:func:`posttrain.platform.steps.run_stages`, the one driver every stage runs through.

Example:
    >>> import pyarrow as pa
    >>> batches = [pa.record_batch({"x": [1, 2]}), pa.record_batch({"x": [3]})]
    >>> [b.num_rows for b in InProcessExecutor().map_batches(lambda b: b, batches, stage="copy")]
    [2, 1]
"""

from __future__ import annotations

import math
import os
import subprocess
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa

from posttrain.platform.errors import ConfigError
from posttrain.platform.progress import NullProgress, ProgressSink, ProgressTracker

R = TypeVar("R")
BatchFn = Callable[[pa.RecordBatch], R]

DEFAULT_BATCH_ROWS = 4096


def iter_batches(table: pa.Table, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Split ``table`` into record batches of at most ``batch_rows`` rows, in order."""
    yield from table.to_batches(max_chunksize=batch_rows)


def rebatch(
    batches: Iterable[pa.RecordBatch], batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pa.RecordBatch]:
    """Regroup a stream of record batches into batches of ``batch_rows`` rows (the last may be
    shorter), holding at most one batch's worth of rows at a time."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(batch_rows - pending_rows, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            pending_rows += take
            offset += take
            if pending_rows == batch_rows:
                yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
                pending, pending_rows = [], 0
    if pending_rows:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


class Executor(ABC):
    """Maps a batch function over record batches, preserving order."""

    def __init__(self, progress: ProgressSink | None = None) -> None:
        self.progress: ProgressSink = progress or NullProgress()

    @property
    @abstractmethod
    def parallelism(self) -> int:
        """How many batches can run at once."""

    @abstractmethod
    def _map(self, fn: BatchFn[R], batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, R]]:
        """Yield ``(input rows, result)`` per batch, in input order."""

    def map_batches(
        self,
        fn: BatchFn[R],
        batches: Iterable[pa.RecordBatch],
        *,
        stage: str,
        total_rows: int | None = None,
    ) -> Iterator[R]:
        """Apply ``fn`` to every batch and yield the results in input order.

        Args:
            fn: a picklable callable (a module-level function or a small step object).
            batches: the input; consumed lazily, never collected into one list.
            stage: name shown in progress reports.
            total_rows: expected input rows, for the progress total.
        """
        tracker = ProgressTracker(stage, total_rows, self.progress)
        for rows, result in self._map(fn, batches):
            tracker.advance(rows)
            yield result
        tracker.finish()

    def close(self) -> None:  # noqa: B027  (optional hook: most executors hold nothing)
        """Release workers, if any."""


class InProcessExecutor(Executor):
    """Runs every batch in the calling process: small inputs, tests, debugging."""

    @property
    def parallelism(self) -> int:
        return 1

    def _map(self, fn: BatchFn[R], batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, R]]:
        for batch in batches:
            yield batch.num_rows, fn(batch)


def _apply(fn: BatchFn[Any], batch: pa.RecordBatch) -> Any:
    _size_native_pools()
    return fn(batch)


def _size_native_pools() -> None:
    """Give the native thread pools of this Ray worker as many threads as its task has CPUs.

    rensa's MinHash and tokenizers' ``encode_batch`` run on rayon's pool, which starts one
    thread per core of the machine on first use: N one-CPU workers on an N-core node would
    run N² threads, and a "1 CPU" worker would use every core. Set before the first batch
    (rayon reads the variable once per process); an operator's own value is kept.
    """
    if "RAYON_NUM_THREADS" in os.environ:
        return
    import ray

    context = ray.get_runtime_context()
    cpus = context.get_assigned_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    os.environ["RAYON_NUM_THREADS"] = str(max(1, math.ceil(cpus)))


def _compact(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` holding only its own bytes, when it is a slice of larger buffers.

    Ray ships task arguments by pickling them, and pickling an Arrow slice writes the whole
    buffers it points into: each 4,096-row slice of a 100 MB column would travel as 100 MB.
    """
    if batch.get_total_buffer_size() <= 2 * batch.nbytes:
        return batch
    return pa.record_batch(
        [pa.concat_arrays([column]) for column in batch.columns], schema=batch.schema
    )


class RayExecutor(Executor):
    """Runs batches as Ray tasks, at most ``2 × parallelism`` in flight, results in order.

    Connects to ``address`` when given (a cluster, ``ray://`` or ``auto``) and otherwise
    starts a local runtime with ``num_cpus`` workers. An already initialised Ray runtime in
    this process is reused, so a Dagster run starts Ray once. ``max_in_flight`` caps the
    tasks running at once (``1`` runs one batch at a time: a one-worker run on any cluster).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        super().__init__(progress)
        import ray

        from posttrain.platform import ray_watchdog

        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._ray = ray
        self._max_in_flight = max_in_flight
        self._address = address
        self._started_here = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
            ray.init(**kwargs)
            self._started_here = True
            if not address:  # a local runtime must not outlive this process, even on kill -9
                self._watchdog = ray_watchdog.start()
        self._remote_apply = ray.remote(_apply)

    def describe(self) -> str:
        """Where the tasks run, in one line: the cluster's address, nodes and CPUs."""
        nodes = [node for node in self._ray.nodes() if node.get("Alive")]  # type: ignore[no-untyped-call]
        cpus = sum(int(node.get("Resources", {}).get("CPU", 0)) for node in nodes)
        gcs = self._ray.get_runtime_context().gcs_address
        where = "Ray cluster" if self._address else "Ray runtime"
        return f"{where} at {gcs}: {len(nodes)} node(s), {cpus} CPU(s)"

    @property
    def parallelism(self) -> int:
        resources: dict[str, float] = self._ray.cluster_resources()  # type: ignore[no-untyped-call]
        cpus = max(1, int(resources.get("CPU", 1)))
        return min(cpus, self._max_in_flight) if self._max_in_flight else cpus

    def _map(self, fn: BatchFn[R], batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, R]]:
        fn_ref = self._ray.put(fn)
        window = self._max_in_flight or 2 * self.parallelism
        in_flight: deque[tuple[int, Any]] = deque()
        for batch in batches:
            task = self._remote_apply.remote(fn_ref, _compact(batch))
            in_flight.append((batch.num_rows, task))
            if len(in_flight) >= window:
                rows, ref = in_flight.popleft()
                yield rows, self._ray.get(ref)
        while in_flight:
            rows, ref = in_flight.popleft()
            yield rows, self._ray.get(ref)

    def close(self) -> None:
        if self._started_here:
            if self._watchdog is not None:
                self._watchdog.terminate()
                self._watchdog.wait()
                self._watchdog = None
            self._ray.shutdown()
            self._started_here = False


class ThreadExecutor(Executor):
    """Runs batches on ``threads`` threads of this process, results in input order.

    For the stages whose work is in native code that releases the GIL (Arrow kernels,
    numpy, rensa): several cores at no start-up cost, where a local Ray runtime takes
    seconds to start and copies every batch to its workers. At most ``2 × threads``
    batches are in flight, so memory stays bounded on a long stream.
    """

    def __init__(self, threads: int | None = None, progress: ProgressSink | None = None) -> None:
        super().__init__(progress)
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self._threads = threads or os.cpu_count() or 1

    @property
    def parallelism(self) -> int:
        return self._threads

    def _map(self, fn: BatchFn[R], batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, R]]:
        from concurrent.futures import Future, ThreadPoolExecutor

        in_flight: deque[tuple[int, Future[R]]] = deque()
        with ThreadPoolExecutor(self._threads, thread_name_prefix="posttrain") as pool:
            for batch in batches:
                in_flight.append((batch.num_rows, pool.submit(fn, batch)))
                if len(in_flight) >= 2 * self._threads:
                    rows, future = in_flight.popleft()
                    yield rows, future.result()
            while in_flight:
                rows, future = in_flight.popleft()
                yield rows, future.result()
