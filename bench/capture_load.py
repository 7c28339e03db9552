"""Sustained capture load on loopback: events/s and p50/p99 latency, fsync on.

Starts ``posttrain serve`` (a subprocess: fsync'd group commit, flushes to bronze every
``--flush-interval`` seconds, so the load includes Iceberg commits) in a temporary home,
then ``--clients`` client processes × ``--connections`` keep-alive connections each send
batches of ``--batch`` session events for ``--seconds``. Latency is per request (a batch
is acknowledged as a whole once durable). The service's own CPU seconds are measured too:
events per CPU-second of the service process is what a quiet 2-core machine would bound.
The baseline, measured in the same run on the same disk: one writer appending the same
encoded batches to a file with an fsync per batch.

Goal: ≥ 10,000 events/s on 2 cores, p99 < 50 ms.

    .venv/bin/python bench/capture_load.py [--seconds 10] [--batch 100] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # capture_server

GOAL_EVENTS_PER_S = 10_000
GOAL_P99_MS = 50.0


def _event(client: int, number: int) -> dict[str, Any]:
    return {
        "type": "session",
        "id": f"load-{client}-{number}",
        "messages": [
            {"role": "system", "content": "You are a helpful agent."},
            {"role": "user", "content": f"What is {number} + {client}? Use the calculator."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": f'{{"a": {number}, "b": 1}}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": str(number + 1)},
            {"role": "assistant", "content": f"The answer is {number + 1}."},
        ],
    }


def _connection_load(
    port: int,
    token: str,
    client: int,
    batch: int,
    until: float,
    out: list[float],
    counts: list[int],
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    number = 0
    while time.time() < until:
        body = json.dumps({"events": [_event(client, number + i) for i in range(batch)]})
        number += batch
        started = time.perf_counter()
        conn.request("POST", "/v1/events", body, headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {payload[:200]!r}")
        out.append(elapsed)
        counts.append(json.loads(payload)["accepted"])
    conn.close()


def _client_process(
    port: int, token: str, index: int, connections: int, batch: int, until: float, queue: Any
) -> None:
    latencies: list[float] = []
    counts: list[int] = []
    threads = [
        threading.Thread(
            target=_connection_load,
            args=(port, token, index * 1000 + n, batch, until, latencies, counts),
        )
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((latencies, sum(counts)))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure_service(
    seconds: float, batch: int, clients: int, connections: int, flush_interval_s: float
) -> dict[str, float]:
    from capture_server import Server, make_home

    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp) / "home", flush_interval_s=flush_interval_s)
        server = Server(home.path).start()
        try:
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            until = time.time() + 3 + seconds  # 3 s for the clients to start
            processes = [
                ctx.Process(
                    target=_client_process,
                    args=(server.port, home.token("alpha"), i, connections, batch, until, queue),
                    daemon=True,
                )
                for i in range(clients)
            ]
            import psutil

            assert server.process is not None
            service_process = psutil.Process(server.process.pid)
            for process in processes:
                process.start()
            time.sleep(max(0.0, until - seconds - time.time()))
            cpu_before = sum(service_process.cpu_times()[:2])
            results = [queue.get(timeout=seconds + 120) for _ in processes]
            cpu_used = sum(service_process.cpu_times()[:2]) - cpu_before
            for process in processes:
                process.join(timeout=30)
        finally:
            server.stop()
    latencies = [value for lat, _ in results for value in lat]
    events = sum(count for _, count in results)
    # Clients start at different times; the window is the load phase, roughly `seconds`.
    return {
        "events_per_s": events / seconds,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "requests": len(latencies),
        "events_per_cpu_s": events / cpu_used if cpu_used else 0.0,
    }


def measure_raw_file(seconds: float, batch: int) -> dict[str, float]:
    """One writer: append an encoded batch, fsync, repeat."""
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        latencies: list[float] = []
        events = 0
        started = time.perf_counter()
        number = 0
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            data = "".join(json.dumps(_event(0, number + i)) + "\n" for i in range(batch)).encode()
            os.write(fd, data)
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t0)
            events += batch
            number += batch
        elapsed = time.perf_counter() - started
        os.close(fd)
    return {
        "events_per_s": events / elapsed,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "requests": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100, help="Events per request.")
    parser.add_argument("--clients", type=int, default=2, help="Client processes.")
    parser.add_argument("--connections", type=int, default=4, help="Connections per client.")
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=5.0,
        help="Seconds between flushes to bronze (so the load includes Iceberg commits).",
    )
    args = parser.parse_args()
    raw = measure_raw_file(args.seconds, args.batch)
    service = measure_service(
        args.seconds, args.batch, args.clients, args.connections, args.flush_interval
    )
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print(
        f"{'':32} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9}\n"
        f"{'raw append + fsync per batch':32} {raw['events_per_s']:>10,.0f} "
        f"{raw['p50_ms']:>8.1f} {raw['p99_ms']:>8.1f} {raw['requests']:>9,}\n"
        f"{'posttrain serve (HTTP, WAL)':32} {service['events_per_s']:>10,.0f} "
        f"{service['p50_ms']:>8.1f} {service['p99_ms']:>8.1f} {service['requests']:>9,}"
    )
    print(
        f"service CPU: {service['events_per_cpu_s']:,.0f} events per CPU-second of the "
        "service process (HTTP + validation + WAL + flushes)"
    )
    ratio = service["events_per_s"] / raw["events_per_s"]
    print(
        f"service / raw file: {ratio:.2f}x events/s; goal ≥ {GOAL_EVENTS_PER_S:,} events/s "
        f"({'met' if service['events_per_s'] >= GOAL_EVENTS_PER_S else 'NOT met'}), "
        f"p99 < {GOAL_P99_MS:.0f} ms ({'met' if service['p99_ms'] < GOAL_P99_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
