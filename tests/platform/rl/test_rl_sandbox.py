"""The sandbox contains every attack an untrusted program can make, and cleans up after it.

Each test runs one hostile program and checks three things: it ended the way the limit
says, its temporary directory is gone, and no process it started is left behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from posttrain.platform.rl import sandbox
from posttrain.platform.rl.sandbox import SandboxLimits, SandboxResult, processes_of, run_python
from posttrain.platform.rl.verifiers import PythonTestsSpec, parse_verifier, spec_json

FAST = SandboxLimits(timeout_s=3, memory_mb=256, max_output_bytes=10_000)


def _sandbox_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("posttrain-sandbox-*")}


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Records the uid of each sandbox; afterwards no process of it and no temp dir remain."""
    uids: list[int] = []
    fresh = sandbox._fresh_uid

    def recording() -> int:
        uid = fresh()
        uids.append(uid)
        return uid

    monkeypatch.setattr(sandbox, "_fresh_uid", recording)
    before = _sandbox_dirs()
    yield uids
    assert _sandbox_dirs() <= before, "the sandbox's temporary directory was left behind"
    for uid in uids:
        assert processes_of(uid) == [], f"processes of sandbox uid {uid} survived"


def test_a_well_behaved_program_runs_and_prints(watched: list[int]) -> None:
    result = run_python("print(6 * 7)", FAST)
    assert result.ok and result.stdout.strip() == "42"


NAMESPACES = os.geteuid() == 0 and shutil.which("unshare") is not None
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="needs root and unshare")


@needs_namespaces
def test_root_with_unshare_gets_namespaces_and_a_fresh_uid() -> None:
    # The project's machines (developers' and CI's) run as root with util-linux `unshare`.
    assert sandbox.best_isolation() == "namespaces+uid"


def test_a_program_that_hangs_is_killed_at_the_wall_time_limit(watched: list[int]) -> None:
    started = time.monotonic()
    result = run_python("import time\nwhile True:\n    time.sleep(0.01)", FAST)
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < FAST.timeout_s + 5
    assert "timed out" in result.explain(FAST)


def test_a_busy_loop_is_killed_at_the_wall_time_limit(watched: list[int]) -> None:
    result = run_python("while True:\n    pass", FAST)
    assert result.timed_out


def test_unbounded_allocation_hits_the_memory_limit(watched: list[int]) -> None:
    result = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))", FAST)
    assert not result.ok and not result.timed_out
    assert "MemoryError" in result.stderr
    assert "out of memory" in result.explain(FAST)


def test_a_fork_bomb_is_contained_and_every_child_killed(watched: list[int]) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    started = time.monotonic()
    result = run_python(bomb, SandboxLimits(timeout_s=2, max_processes=8))
    assert result.timed_out
    assert time.monotonic() - started < 10
    # The fixture asserts that none of the forked processes survived.


def test_a_forked_daemon_dies_with_the_sandbox(watched: list[int]) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(60)\n"
        "print('parent done')\n"
    )
    result = run_python(code, FAST)
    assert result.ok and "parent done" in result.stdout


def test_the_network_is_unreachable(watched: list[int]) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "print('connected')\n"
        )
        result = run_python(code, FAST)
    assert not result.ok and "connected" not in result.stdout
    assert "OSError" in result.stderr or "PermissionError" in result.stderr


def test_the_network_is_refused_in_process_mode_too(watched: list[int]) -> None:
    code = "import socket\nsocket.socket()\nprint('made a socket')"
    result = run_python(code, FAST, isolation="process")
    assert not result.ok and "made a socket" not in result.stdout
    assert "not allowed" in result.stderr


def test_a_huge_file_is_cut_at_the_file_size_limit(watched: list[int]) -> None:
    code = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (64 * 1024 * 1024))"
    result = run_python(code, SandboxLimits(timeout_s=5, max_file_mb=1))
    assert not result.ok
    assert "File too large" in result.stderr


@needs_namespaces
def test_files_left_in_shared_temp_folders_are_removed(watched: list[int]) -> None:
    code = "open('/tmp/posttrain-sandbox-leftover', 'w').write('x')"
    result = run_python(code, FAST)
    assert result.ok
    assert not Path("/tmp/posttrain-sandbox-leftover").exists()


def test_endless_printing_is_capped(watched: list[int]) -> None:
    result = run_python("while True:\n    print('spam' * 100)", FAST)
    assert result.output_capped and not result.ok
    assert len(result.stdout) + len(result.stderr) <= FAST.max_output_bytes + 65536
    assert "output limit" in result.explain(FAST)


def test_a_crash_reports_its_last_error_line(watched: list[int]) -> None:
    result: SandboxResult = run_python("raise ValueError('bad input')", FAST)
    assert result.returncode == 1
    assert result.explain(FAST) == "exited 1: ValueError: bad input"


@pytest.mark.parametrize(
    "attack",
    [
        "while True:\n    pass",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "x = bytearray(10**10)",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
        "while True:\n    print('x' * 1000)",
    ],
    ids=["hang", "fork", "memory", "network", "print"],
)
def test_a_hostile_completion_gets_reward_zero_with_a_reason(
    attack: str, watched: list[int]
) -> None:
    spec = PythonTestsSpec(tests="def check(f):\n    assert f() == 1", entry_point="f", timeout_s=2)
    verifier = parse_verifier("python_tests", spec_json(spec), prompt_id="attack")
    body = textwrap.indent(attack, "    ")
    result = verifier.verify(f"```python\ndef f():\n{body}\n    return 1\n```")
    assert result.reward == 0.0 and not result.passed
    assert result.why.startswith("tests failed: ")
