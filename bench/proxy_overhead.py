"""Capture proxy overhead: the same chat completions direct to the model server and through
``posttrain serve``'s proxy (capture on, fsync'd write-ahead log), in the same run.

Starts the fake OpenAI-compatible server and ``posttrain serve`` (a temporary home, a
writer token) as two processes on 127.0.0.1, then sends ``--requests`` calls of each
kind, alternating direct and proxied so both see the same machine load: non-streaming
(time to the whole body) and streaming (time to the last byte of the event stream).
Prints p50/p99 per path and the proxy's added milliseconds. Goal: capture adds at most a
few ms (p50 under 5 ms).

    .venv/bin/python bench/proxy_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

GOAL_P50_MS = 5.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _time(
    client: httpx2.Client, url: str, body: dict[str, object], headers: dict[str, str]
) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        for _ in response.iter_raw():
            pass
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
    return (time.perf_counter() - started) * 1000


def _wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({process.returncode})")
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not start")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    from posttrain.platform.access import Role, WorkspaceStore

    home = Path(tempfile.mkdtemp(prefix="posttrain-proxy-bench-"))
    store = WorkspaceStore.open(home)
    store.create("bench")
    token = store.issue_token("bench", Role.WRITER)[0]
    upstream_port, service_port = _free_port(), _free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    (home / "posttrain.yaml").write_text(
        f"proxy:\n  upstream_url: {upstream_url}/v1\n  api_key_env: POSTTRAIN_BENCH_NO_KEY\n"
    )
    env = {**os.environ, "POSTTRAIN_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    # Three processes, as in production: the model server, the service, this client.
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "posttrain.serve.fake_openai", "--port", str(upstream_port)],
            env=env,
        ),
        subprocess.Popen(
            [sys.executable, "-c", "from posttrain.cli import main; main()", "serve",
             "--port", str(service_port), "--log-level", "warning"],
            env=env,
        ),
    ]  # fmt: skip
    try:
        _wait_up(f"{upstream_url}/_stats", processes[0])
        _wait_up(f"{service_url}/healthz", processes[1])
        results = _measure(upstream_url, service_url, token, args.requests)
        metrics = httpx2.get(f"{service_url}/metrics", timeout=10).text
        accepted = [line for line in metrics.splitlines() if "events_accepted_total" in line]
        print(f"captured into the write-ahead log (fsync on): {accepted}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(home, ignore_errors=True)
    _report(results)


def _measure(
    upstream_url: str, service_url: str, token: str, requests: int
) -> dict[tuple[str, str], list[float]]:
    targets = {
        "direct": (f"{upstream_url}/v1/chat/completions", {}),
        "proxied": (f"{service_url}/v1/chat/completions", {"Authorization": f"Bearer {token}"}),
    }
    results: dict[tuple[str, str], list[float]] = {}
    with httpx2.Client(timeout=30) as client:
        for mode in ("plain", "stream"):
            for i in range(requests + 20):
                body = {
                    "model": "bench",
                    "stream": mode == "stream",
                    "messages": [{"role": "user", "content": f"question {i} " * 20}],
                }
                for path, (url, headers) in targets.items():
                    elapsed = _time(client, url, body, headers)
                    if i >= 20:  # warm-up: connections, first imports
                        results.setdefault((mode, path), []).append(elapsed)
    return results


def _report(results: dict[tuple[str, str], list[float]]) -> None:
    print(f"{'mode':8} {'path':8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for (mode, path), values in results.items():
        print(
            f"{mode:8} {path:8} {_percentile(values, 0.5):8.2f} {_percentile(values, 0.99):8.2f} "
            f"{statistics.fmean(values):8.2f}"
        )
    for mode in ("plain", "stream"):
        direct, proxied = results[(mode, "direct")], results[(mode, "proxied")]
        added50 = _percentile(proxied, 0.5) - _percentile(direct, 0.5)
        added99 = _percentile(proxied, 0.99) - _percentile(direct, 0.99)
        print(
            f"{mode}: proxy adds {added50:.2f} ms at p50, {added99:.2f} ms at p99 "
            f"(goal p50 < {GOAL_P50_MS:.0f} ms: {'met' if added50 < GOAL_P50_MS else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
