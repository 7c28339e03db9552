"""Without --workers, a command uses every core on large input and one on small input."""

from __future__ import annotations

import os

import pytest

from posttrain.cli._app import AUTO_PARALLEL_MIN_BYTES, make_executor
from posttrain.platform.execution import InProcessExecutor, ThreadExecutor
from posttrain.platform.progress import NullProgress


def test_small_input_runs_in_this_process_on_one_core() -> None:
    executor = make_executor(None, None, NullProgress(), input_bytes=AUTO_PARALLEL_MIN_BYTES - 1)
    assert isinstance(executor, InProcessExecutor)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: nothing to spread")
def test_large_input_uses_every_core_as_threads() -> None:
    executor = make_executor(None, None, NullProgress(), input_bytes=AUTO_PARALLEL_MIN_BYTES)
    assert isinstance(executor, ThreadExecutor)
    assert executor.parallelism == os.cpu_count()


def test_one_worker_asked_for_is_one_core_whatever_the_size() -> None:
    executor = make_executor(1, None, NullProgress(), input_bytes=10 * AUTO_PARALLEL_MIN_BYTES)
    assert isinstance(executor, InProcessExecutor)


def test_an_executor_in_the_settings_wins_over_the_automatic_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTTRAIN_EXECUTOR", "in_process")
    executor = make_executor(None, None, NullProgress(), input_bytes=10 * AUTO_PARALLEL_MIN_BYTES)
    assert isinstance(executor, InProcessExecutor)
