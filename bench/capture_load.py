"""Sustained capture load on loopback: events/s and p50/p99 latency, fsync on.

How the server is loaded: ``--clients`` client processes × ``--connections`` keep-alive
HTTP/1.1 connections each (default 2 × 4 = 8 requests in flight); every request is one
``POST /v1/events`` of ``--batch`` session events (default 100; 5 OpenAI messages with a
tool call each, about 450 bytes of JSON per event); each connection sends its next request
when the previous one is answered (closed loop), for ``--seconds`` after a common start.
Latency is per request (a batch is acknowledged as a whole once durable).

Three targets, measured in the same run with the same clients and bodies:

* ``posttrain serve`` (a subprocess in a temporary home): validation, capture rules,
  fsync'd group commit, and flushes to bronze every ``--flush-interval`` seconds, so the
  load includes Iceberg commits. Its CPU seconds are measured too: events per CPU-second
  of the service process is what a quiet 2-core machine would bound.
* the peer: the same uvicorn (httptools, uvloop) serving a bare ASGI app that parses the
  JSON body and answers ``{"accepted": n}`` without storing anything: the HTTP ceiling
  of this machine with these clients.
* raw file: one writer appending the same encoded batches to a file, fsync per batch
  (the disk's bound for one writer).

Goal: ≥ 10,000 events/s on 2 cores, p99 < 50 ms.

    .venv/bin/python bench/capture_load.py [--seconds 10] [--batch 100] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

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
    start: float,
    until: float,
    interval: float,
    out: list[float],
    counts: list[int],
) -> None:
    """Send batches on one connection until ``until``: back to back (``interval`` 0), or
    one every ``interval`` seconds from ``start``. Paced latency counts from the scheduled
    send time, so a slow answer that delays the next request is not hidden (no
    coordinated omission)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    number = 0
    scheduled = start
    time.sleep(max(0.0, start - time.time()))
    while time.time() < until:
        # orjson: the clients share the 2 cores with the server; encoding costs them little.
        body = orjson.dumps({"events": [_event(client, number + i) for i in range(batch)]})
        number += batch
        if interval:
            time.sleep(max(0.0, scheduled - time.time()))
            started = scheduled
        else:
            started = time.time()
        conn.request("POST", "/v1/events", body, headers)
        response = conn.getresponse()
        payload = response.read()
        elapsed = time.time() - started
        scheduled += interval
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {payload[:200]!r}")
        out.append(elapsed)
        counts.append(orjson.loads(payload)["accepted"])
    conn.close()


def _client_process(
    port: int,
    token: str,
    index: int,
    connections: int,
    batch: int,
    start: float,
    until: float,
    interval: float,
    queue: Any,
) -> None:
    latencies: list[float] = []
    counts: list[int] = []
    # Paced connections are spread evenly over the interval, across all the clients.
    phase = interval / connections
    threads = [
        threading.Thread(
            target=_connection_load,
            args=(
                port,
                token,
                index * 1000 + n,
                batch,
                start + n * phase + index * phase / 2,
                until + n * phase + index * phase / 2,  # each runs `seconds`
                interval,
                latencies,
                counts,
            ),
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


def _load(
    port: int,
    token: str,
    pid: int,
    seconds: float,
    batch: int,
    clients: int,
    connections: int,
    rate: float = 0.0,
    run: int = 0,
) -> dict[str, float]:
    """Run the clients against the server on ``port`` (process ``pid``) for ``seconds``:
    as fast as answers come (``rate`` 0), or paced to ``rate`` events/s in total."""
    interval = batch * clients * connections / rate if rate else 0.0
    import psutil

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 3  # the clients start (spawn, imports) before the common start
    until = start + seconds
    processes = [
        ctx.Process(
            target=_client_process,
            args=(port, token, i + 100 * run, connections, batch, start, until, interval, queue),
            daemon=True,
        )
        for i in range(clients)
    ]
    server_process = psutil.Process(pid)
    for process in processes:
        process.start()
    try:
        time.sleep(max(0.0, start - time.time()))
        cpu_before = sum(server_process.cpu_times()[:2])
        results = [queue.get(timeout=seconds + 120) for _ in processes]
        cpu_used = sum(server_process.cpu_times()[:2]) - cpu_before
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    latencies = [value for lat, _ in results for value in lat]
    events = sum(count for _, count in results)
    return {
        "events_per_s": events / seconds,
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "requests": len(latencies),
        "events_per_cpu_s": events / cpu_used if cpu_used else 0.0,
    }


def measure_service(
    seconds: float,
    batch: int,
    clients: int,
    connections: int,
    flush_interval_s: float,
    rates: tuple[float, ...],
) -> list[dict[str, float]]:
    """One ``posttrain serve``, loaded once per rate in turn (0: as fast as it answers)."""
    from capture_server import Server, call, make_home

    with tempfile.TemporaryDirectory() as tmp:
        home = make_home(Path(tmp) / "home", flush_interval_s=flush_interval_s)
        server = Server(home.path).start()
        try:
            assert server.process is not None
            # Steady state: the first flush creates the bronze tables and registers the
            # source, once per home; it is not part of the sustained load.
            warm_up = [_event(999_999, n) for n in range(batch)]
            call(server.url + "/v1/events", "POST", {"events": warm_up}, token=home.token("alpha"))
            deadline = time.monotonic() + flush_interval_s + 60
            while "posttrain_flushes_total" not in call(server.url + "/metrics")[1]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the warm-up batch was not flushed")
                time.sleep(0.2)
            return [
                _load(
                    server.port,
                    home.token("alpha"),
                    server.process.pid,
                    seconds,
                    batch,
                    clients,
                    connections,
                    rate,
                    run,
                )
                for run, rate in enumerate(rates)
            ]
        finally:
            server.stop()


async def peer_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The peer: read and parse the JSON body, answer how many events it held; store nothing."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    events = orjson.loads(body)["events"] if body else []
    answer = orjson.dumps({"accepted": len(events)})
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def measure_peer(
    seconds: float, batch: int, clients: int, connections: int, rates: tuple[float, ...]
) -> list[dict[str, float]]:
    """The same clients against :func:`peer_app` on the same uvicorn, once per rate."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [sys.executable, "-m", "uvicorn", "capture_load:peer_app", "--app-dir"]
    command += [str(Path(__file__).parent), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the peer server did not start") from None
                time.sleep(0.1)
        return [
            _load(port, "none", process.pid, seconds, batch, clients, connections, rate, run)
            for run, rate in enumerate(rates)
        ]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


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
            data = b"".join(orjson.dumps(_event(0, number + i)) + b"\n" for i in range(batch))
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


def _row(name: str, figures: dict[str, float]) -> str:
    per_cpu = figures.get("events_per_cpu_s")
    return (
        f"{name:36} {figures['events_per_s']:>10,.0f} {figures['p50_ms']:>8.1f} "
        f"{figures['p99_ms']:>8.1f} {figures['requests']:>9,.0f} "
        f"{f'{per_cpu:,.0f}' if per_cpu else '-':>14}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Seconds per run.")
    parser.add_argument("--batch", type=int, default=100, help="Events per request.")
    parser.add_argument("--clients", type=int, default=2, help="Client processes.")
    parser.add_argument("--connections", type=int, default=4, help="Connections per client.")
    parser.add_argument(
        "--rate",
        type=float,
        default=GOAL_EVENTS_PER_S,
        help="Events/s of the paced run (latency at a sustained rate); 0 skips it.",
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=5.0,
        help="Seconds between flushes to bronze (so the load includes Iceberg commits).",
    )
    args = parser.parse_args()
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"cores: {os.cpu_count()}, load average at start (1/5/15 min): {load}")
    print(
        f"load: {args.clients} client processes x {args.connections} keep-alive connections, "
        f"{args.batch} session events per request, {args.seconds:.0f} s per run; "
        f"'max': each connection sends when answered; 'paced': {args.rate:,.0f} events/s "
        "in total, latency from the scheduled send"
    )
    rates = (0.0, args.rate) if args.rate else (0.0,)
    raw = measure_raw_file(args.seconds, args.batch)
    peer = measure_peer(args.seconds, args.batch, args.clients, args.connections, rates)
    service = measure_service(
        args.seconds, args.batch, args.clients, args.connections, args.flush_interval, rates
    )
    lines = [
        f"{'':36} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
        f"{'events/CPU-s':>14}",
        _row("raw append + fsync per batch", raw),
    ]
    for index, rate in enumerate(rates):
        mode = "max" if not rate else "paced"
        lines.append(_row(f"peer: uvicorn, parse, no store ({mode})", peer[index]))
        lines.append(_row(f"posttrain serve, HTTP + WAL ({mode})", service[index]))
    print("\n".join(lines))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    top, bottom = service[0], peer[0]
    print(
        f"max rate: service / peer {top['events_per_s'] / bottom['events_per_s']:.2f}x "
        f"events/s, service / raw file {top['events_per_s'] / raw['events_per_s']:.2f}x"
    )
    paced = service[-1]
    print(
        f"goal ≥ {GOAL_EVENTS_PER_S:,} events/s "
        f"({'met' if top['events_per_s'] >= GOAL_EVENTS_PER_S else 'NOT met'} at max rate), "
        f"p99 < {GOAL_P99_MS:.0f} ms at {args.rate:,.0f} events/s "
        f"({'met' if args.rate and paced['p99_ms'] < GOAL_P99_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
