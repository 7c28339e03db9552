"""Run untrusted Python in a separate, limited, network-less process, and clean up after it.

Layers, strongest available first (``isolation`` in each result says which one ran):

- ``namespaces+uid`` (root with ``unshare``, the default here): the program runs in a new
  network namespace (only a downed loopback: every connection is refused) and a new PID
  namespace whose init is the launcher, so when it ends the kernel kills every process the
  program started, daemonized or not. The launcher drops to a fresh unprivileged uid of
  its own, so ``RLIMIT_NPROC`` (per uid) bounds a fork bomb and the files it may have left
  in the shared temp folders can be found by owner and removed.
- ``namespaces``: the same namespaces, but as root (no interpreter readable by another uid
  was found), so ``RLIMIT_NPROC`` is not enforced: a fork bomb is bounded only by the wall
  time, after which the PID namespace dies whole.
- ``process`` (no ``unshare`` or not root): a new session killed as a group, and an audit
  hook refusing sockets, subprocesses and ``ctypes``. An audit hook is not a security
  boundary (a determined program can get around it); it only stops honest mistakes.

In every mode: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` (largest file) and no
core dumps, a wall-time deadline, stdout+stderr capped (the program is killed past the cap),
a fresh temporary directory as working directory, removed afterwards whatever happened.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from posttrain.platform.config import FrozenConfig

Isolation = Literal["namespaces+uid", "namespaces", "process"]

# Fresh uids far above any real account: (pid << 8 | counter) keeps concurrent sandboxes of
# different processes, and successive ones of one process, on distinct uids.
_UID_BASE = 1 << 24
_uid_counter = itertools.count()

# --kill-child: if unshare dies (we SIGKILL it on timeout), the namespace's init gets
# SIGKILL, and the kernel then kills every other process of the PID namespace.
_UNSHARE = ("unshare", "--net", "--pid", "--fork", "--kill-child")
# Can the sandbox uid start this interpreter and import its standard library?
_PROBE = "import os; os.setgid({uid}); os.setuid({uid}); import json, math, re"

_SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable: where leftovers could hide

# Runs as ``python -I -S -c LAUNCHER uid mem cpu nproc fsize audit``: sets the limits on
# itself, drops to the sandbox uid, then runs main.py as __main__ in the same interpreter.
_LAUNCHER = r"""
import os, resource, runpy, sys
uid, mem, cpu, nproc, fsize, audit = (int(a) for a in sys.argv[1:7])
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
if audit:
    _refused = ("socket.", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                "os.spawn", "os.fork", "ctypes.dlopen")
    def _hook(event, args):
        if event.startswith(_refused) and event != "socket.getaddrinfo":
            raise PermissionError(f"sandbox: {event} is not allowed")
    sys.addaudithook(_hook)
sys.argv = ["main.py"]
sys.path.insert(0, os.getcwd())
runpy.run_path("main.py", run_name="__main__")
"""


class SandboxLimits(FrozenConfig):
    """What a sandboxed program may use."""

    timeout_s: float = Field(default=10.0, gt=0, le=600, description="Wall-time limit.")
    memory_mb: int = Field(default=512, ge=64, description="Address space (RLIMIT_AS).")
    max_processes: int = Field(default=16, ge=1, description="Processes of the sandbox uid.")
    max_file_mb: int = Field(default=16, ge=1, description="Largest file it may write.")
    max_output_bytes: int = Field(default=64_000, ge=1024, description="stdout + stderr cap.")


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended."""

    returncode: int | None  # None when it was killed by the sandbox (timeout, output cap)
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    output_capped: bool
    isolation: Isolation

    @property
    def ok(self) -> bool:
        """Exited 0 within every limit."""
        return self.returncode == 0 and not self.timed_out and not self.output_capped

    def explain(self, limits: SandboxLimits) -> str:
        """One line saying how the run ended, for a person to read."""
        if self.timed_out:
            return f"timed out after {limits.timeout_s:g} s (wall-time limit)"
        if self.output_capped:
            return f"printed more than {limits.max_output_bytes:,} bytes (output limit)"
        if self.returncode == 0:
            return f"exited 0 in {self.seconds:.2f} s"
        last = _last_line(self.stderr)
        if self.returncode is not None and self.returncode < 0:
            name = signal.Signals(-self.returncode).name
            hint = " (CPU limit)" if name == "SIGXCPU" else ""
            return f"killed by {name}{hint}" + (f": {last}" if last else "")
        if "MemoryError" in self.stderr:
            return f"ran out of memory (limit {limits.memory_mb} MB): {last}"
        return f"exited {self.returncode}: {last or 'no error message'}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run_python(
    code: str,
    limits: SandboxLimits | None = None,
    *,
    isolation: Isolation | None = None,
) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox and return how it ended.

    Never raises for anything the program does; the temporary directory and every process
    the program started are gone when this returns.

    Args:
        code: Python source, run as ``__main__`` with only the standard library.
        limits: wall time, memory, processes, file size and output caps.
        isolation: force a mode (tests); default: the strongest this machine offers.
    """
    limits = limits or SandboxLimits()
    mode = isolation or best_isolation()
    uid = _fresh_uid() if mode == "namespaces+uid" else -1
    workdir = Path(tempfile.mkdtemp(prefix="posttrain-sandbox-"))
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        (workdir / "main.py").write_text(code, encoding="utf-8")
        if uid >= 0:
            for path in (workdir, workdir / "main.py"):
                os.chown(path, uid, uid)
        os.chmod(workdir, 0o700)
        proc = subprocess.Popen(
            _command(mode, uid, limits),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(workdir),
            start_new_session=True,  # one process group to kill, away from our terminal
            close_fds=True,
        )
        stdout, stderr, timed_out, capped = _collect(proc, started + limits.timeout_s, limits)
        returncode = None if (timed_out or capped) else proc.returncode
        return SandboxResult(
            returncode=returncode,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=stderr.decode("utf-8", "replace"),
            seconds=time.monotonic() - started,
            timed_out=timed_out,
            output_capped=capped,
            isolation=mode,
        )
    finally:
        if proc is not None:
            _kill_group(proc)
        if uid >= 0:
            _kill_uid(uid)
            _remove_owned(uid)
        shutil.rmtree(workdir, ignore_errors=True)


def _command(mode: Isolation, uid: int, limits: SandboxLimits) -> list[str]:
    mem = limits.memory_mb * 1024 * 1024
    cpu = math.ceil(limits.timeout_s) + 1  # a second fence behind the wall-time deadline
    fsize = limits.max_file_mb * 1024 * 1024
    audit = 0 if mode != "process" else 1
    python = _interpreter(mode)
    args = [str(uid), str(mem), str(cpu), str(limits.max_processes), str(fsize), str(audit)]
    launch = [python, "-I", "-S", "-c", _LAUNCHER, *args]
    if mode == "process":
        return launch
    return [*_UNSHARE, *launch]


def _environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, limits: SandboxLimits
) -> tuple[bytes, bytes, bool, bool]:
    """Read both pipes until EOF, the deadline or the output cap, whichever comes first."""
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            selector.register(stream.fileno(), selectors.EVENT_READ)
        exited_at: float | None = None
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return (
                    bytes(buffers[proc.stdout.fileno()]),
                    bytes(buffers[proc.stderr.fileno()]),
                    True,
                    False,
                )
            if proc.poll() is not None:
                # In process mode a daemonized child may hold the pipes open; do not wait
                # for it beyond a short grace.
                exited_at = exited_at or now
                if now - exited_at > 0.5:
                    break
            for key, _ in selector.select(timeout=min(deadline - now, 0.1)):
                chunk = os.read(int(key.fd), 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffers[int(key.fd)] += chunk
                if sum(len(b) for b in buffers.values()) > limits.max_output_bytes:
                    return (
                        bytes(buffers[proc.stdout.fileno()]),
                        bytes(buffers[proc.stderr.fileno()]),
                        False,
                        True,
                    )
    remaining = max(deadline - time.monotonic(), 0.0)
    try:
        proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        timed_out = True
    else:
        timed_out = False
    return (
        bytes(buffers[proc.stdout.fileno()]),
        bytes(buffers[proc.stderr.fileno()]),
        timed_out,
        False,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _fresh_uid() -> int:
    return _UID_BASE + ((os.getpid() << 8) | (next(_uid_counter) & 0xFF))


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes whose real uid is ``uid`` (zombies excluded)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith(("Z", "X")):
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            pids.append(int(entry.name))
    return pids


def _kill_uid(uid: int, patience_s: float = 5.0) -> None:
    # The PID namespace's teardown is asynchronous: wait until the kernel has finished it
    # (and kill anything of that uid it somehow missed) before the directory goes.
    until = time.monotonic() + patience_s
    while pids := processes_of(uid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > until:
            break
        time.sleep(0.01)


def _remove_owned(uid: int) -> None:
    """Remove what the sandbox uid left in the shared temp folders: nothing else owns it."""
    for folder in _SCRATCH_DIRS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


@functools.cache
def best_isolation() -> Isolation:
    """The strongest isolation this machine offers (probed once per process)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "process"
    if _uid_interpreter():
        return "namespaces+uid"
    probe = subprocess.run(
        [*_UNSHARE, "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return "namespaces" if probe.returncode == 0 else "process"


@functools.cache
def _uid_interpreter() -> str:
    """A Python that an unprivileged uid can run with its standard library ('' if none).

    The venv's base interpreter may live under a home folder other users cannot enter.
    """
    candidates = [os.path.realpath(sys.executable), "/usr/bin/python3"]
    for python in dict.fromkeys(candidates):
        if not os.path.exists(python):
            continue
        uid = _fresh_uid()
        try:
            probe = subprocess.run(
                [*_UNSHARE, python, "-I", "-S", "-c", _PROBE.format(uid=uid)],
                capture_output=True,
                timeout=30,
                check=False,
                cwd="/",
            )
        except (OSError, subprocess.SubprocessError):
            continue
        finally:
            _kill_uid(uid)
        if probe.returncode == 0:
            return python
    return ""


def _interpreter(mode: Isolation) -> str:
    if mode == "namespaces+uid":
        return _uid_interpreter()
    return os.path.realpath(sys.executable)
