"""Stop a local Ray runtime whose driver died without shutting it down (``kill -9``).

Ray's own processes notice a dead driver only in part: the GCS, the raylet and the
workers exit, but the dashboard and runtime-env agents of the session can outlive it for
good. :class:`~posttrain.platform.execution.RayExecutor` therefore starts this tiny
watchdog next to every local runtime it starts. The watchdog remembers every process
descended from the driver while the driver lives (Ray starts workers at any time), and
when the driver is gone it terminates those still running, then exits. A driver that
shuts Ray down itself stops the watchdog first.

Run as ``python -m posttrain.platform.ray_watchdog DRIVER_PID``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil

POLL_S = 0.5
GRACE_S = 2.0


def _descendants(driver: psutil.Process) -> set[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return {p for p in driver.children(recursive=True) if p.pid != os.getpid()}
    return set()


def _stop(processes: set[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL what is left after :data:`GRACE_S`.

    ``psutil.Process`` compares creation times, so a recycled pid is never signalled.
    """
    alive = [p for p in processes if p.is_running()]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, left = psutil.wait_procs(alive, timeout=GRACE_S)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=GRACE_S)


def watch(driver_pid: int, poll_s: float = POLL_S) -> None:
    """Until ``driver_pid`` exits, track its descendants; then stop those still running."""
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return
    seen: set[psutil.Process] = set()
    while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
        seen |= _descendants(driver)
        time.sleep(poll_s)
    _stop(seen)


def start(driver_pid: int | None = None) -> subprocess.Popen[bytes]:
    """Start a watchdog for ``driver_pid`` (default: this process) in its own session.

    Its own session keeps it out of the terminal's process group: a Ctrl-C or a
    ``killpg`` aimed at the driver leaves the watchdog alive to clean up after it.
    """
    return subprocess.Popen(
        [sys.executable, "-m", __name__, str(driver_pid or os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def main() -> None:
    """Entry point: ``python -m posttrain.platform.ray_watchdog DRIVER_PID``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))


if __name__ == "__main__":
    main()
