"""Run real processes against one warehouse at once, and never leave one behind.

Spawned, not forked: a fork of a test process that already runs Ray or gRPC threads can
deadlock in the child (seen in a fresh-clone CI run). Every racer is a daemon, waits at a
barrier with a timeout (a racer that dies before the barrier must not strand the others),
and whatever is still alive at the deadline is killed: a stuck racer fails its test, it
does not hang the session at exit.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
BARRIER_TIMEOUT_S = 120.0


def race(
    target: Callable[..., None], jobs: Sequence[tuple[Any, ...]], *, deadline_s: float = 300.0
) -> list[int | None]:
    """Run ``target(*job, barrier)`` for every job in its own process; their exit codes.

    A process still running after ``deadline_s`` (all processes together) is killed and
    reported as ``None``.
    """
    barrier = SPAWN.Barrier(len(jobs), timeout=BARRIER_TIMEOUT_S)
    processes = [SPAWN.Process(target=target, args=(*job, barrier), daemon=True) for job in jobs]
    try:
        for process in processes:
            process.start()
        give_up_at = time.monotonic() + deadline_s
        for process in processes:
            process.join(timeout=max(0.0, give_up_at - time.monotonic()))
        return [process.exitcode for process in processes]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)


def wait_at(barrier: Barrier) -> None:
    """Wait for every racer; raise (ending this racer) if one of them never arrives."""
    barrier.wait()
