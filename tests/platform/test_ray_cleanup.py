"""A local Ray runtime never outlives the process that started it, even after ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent(
    """
    import time
    import pyarrow as pa
    from posttrain.platform.execution import RayExecutor

    executor = RayExecutor(num_cpus=1)
    batches = [pa.record_batch({"x": [1, 2]})]
    assert [b.num_rows for b in executor.map_batches(lambda b: b, batches, stage="t")] == [2]
    print("ready", flush=True)
    time.sleep(600)
    """
)


def _alive(processes: list[psutil.Process]) -> list[str]:
    names = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                names.append(f"{process.pid} {process.name()}")
        except psutil.NoSuchProcess:
            pass
    return names


def test_no_ray_process_outlives_a_driver_killed_with_sigkill() -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "ready"
        session = psutil.Process(driver.pid).children(recursive=True)
        names = " ".join(process.name() for process in session)
        assert "raylet" in names and "gcs_server" in names

        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while _alive(session) and time.monotonic() < deadline:
            time.sleep(0.25)

        assert _alive(session) == []
    finally:
        if driver.poll() is None:
            driver.kill()
