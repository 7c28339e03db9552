"""A capture home (workspaces, tokens, settings) and ``posttrain serve`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.platform.access import Role, WorkspaceStore

WORKSPACES = ("alpha", "beta")


@dataclass
class CaptureHome:
    """A posttrain home with workspaces alpha and beta and a token per role each."""

    path: Path
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, workspace: str, role: str = "writer") -> str:
        return self.tokens[(workspace, role)]


def make_home(path: Path, **capture: Any) -> CaptureHome:
    """Create the home; ``capture`` settings go in ``posttrain.yaml`` (``capture:``)."""
    import yaml

    path.mkdir(parents=True, exist_ok=True)
    settings = {"flush_interval_s": 0.5, **capture}
    (path / "posttrain.yaml").write_text(yaml.safe_dump({"capture": settings}))
    store = WorkspaceStore.open(path)
    home = CaptureHome(path)
    for workspace in WORKSPACES:
        store.create(workspace)
        for role in Role:
            home.tokens[(workspace, role.value)] = store.issue_token(workspace, role)[0]
    return home


def wait_for(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """``check()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any, dict[str, str]]:
    """One HTTP request: (status, decoded JSON or text, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, payload, headers = error.code, error.read(), dict(error.headers)
    try:
        return status, json.loads(payload), headers
    except ValueError:
        return status, payload.decode(errors="replace"), headers


class Server:
    """``posttrain serve`` on a free loopback port, as a child process."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = home / f"serve-{self.port}.log"

    def start(self, timeout: float = 90.0) -> Server:
        env = {**os.environ, "POSTTRAIN_HOME": str(self.home)}
        env.pop("POSTTRAIN_TOKEN", None)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from posttrain.cli import main; main()",
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"posttrain serve exited: {self.log.read_text()[-2000:]}")
            try:
                if call(self.url + "/healthz", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"posttrain serve did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no flush, no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM: uvicorn shuts down, the service flushes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
