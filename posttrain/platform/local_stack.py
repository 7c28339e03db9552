"""Real scale-out services on this machine: Postgres, an S3-compatible store, a Ray cluster.

The tests of the scaled-out configuration, ``make demo-scale`` and ``bench/scale.py`` start
the same three services the same way, each on 127.0.0.1 and a free port, and stop exactly
the processes they started (by process id, never by name: other Ray clusters and
Postgres servers on the machine are left alone):

- :func:`start_postgres`: a throwaway PostgreSQL cluster (``initdb`` into a temporary
  folder, the server as a child process). As root it runs as the ``postgres`` OS user,
  since PostgreSQL refuses to run as root.
- :func:`start_s3`: moto's S3 server in a thread of this process (``moto[server]``, the
  S3 emulator most AWS SDK test suites use, installed from PyPI; MinIO's server is not on
  PyPI, only its client).
- :func:`start_ray_cluster`: ``ray start --head`` plus worker nodes, each a separate
  ``ray start --block`` process group, the head with no CPUs so that every task runs on a
  worker node, never in the driver's process.

Every starter raises :class:`ServiceUnavailable` with the reason when the service cannot be
started here (no PostgreSQL binaries, no ``postgres`` user, moto not installed), so a test
can skip with that reason and CI, which installs them, runs it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.platform.errors import PosttrainError

START_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 5.0


class ServiceUnavailable(PosttrainError):
    """A local service cannot be started on this machine; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes] | None, what: str, log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(
                f"{what} exited with code {process.returncode} while starting; "
                f"its log {log}:\n{_tail(log)}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise ServiceUnavailable(
        f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f} s; "
        f"its log {log}:\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _stop_groups(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process's group at once, wait, then SIGKILL what is left of the groups.

    Each process leads its own process group (it was started in a new session), so the
    group id is its process id: only the processes started here are signalled.
    """
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)


# -- PostgreSQL -----------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (PATH, else Debian's versioned folders).

    Raises:
        ServiceUnavailable: PostgreSQL's server binaries are not installed.
    """
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    raise ServiceUnavailable(
        "PostgreSQL server binaries not found (no initdb on PATH nor in "
        "/usr/lib/postgresql/*/bin); install Debian's postgresql package"
    )


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL server; :meth:`stop` ends it and deletes its data."""

    port: int
    user: str
    password: str = field(repr=False)
    data_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = "127.0.0.1"

    def url(self, database: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of ``database``, password included: keep it out of files and logs."""
        return (
            f"postgresql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def create_database(self, name: str) -> None:
        """Create ``name`` (idempotent)."""
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{name}"')

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then kill, then delete the data folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _run_as() -> tuple[int | None, int | None]:
    """The uid/gid to run PostgreSQL as: ourselves, or the ``postgres`` user when root."""
    if os.geteuid() != 0:
        return None, None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable(
            "running as root and there is no 'postgres' OS user to run PostgreSQL as "
            "(PostgreSQL refuses root); install Debian's postgresql package, which creates it"
        ) from None
    return entry.pw_uid, entry.pw_gid


def start_postgres(
    *, user: str = "posttrain", databases: tuple[str, ...] = ("posttrain",)
) -> PostgresServer:
    """``initdb`` a new cluster in a temporary folder and start its server on a free port.

    Host connections need the password (SCRAM), a random one made here; the server
    listens on 127.0.0.1 only. Durability is off (``fsync=off``): a throwaway server.

    Raises:
        ServiceUnavailable: no PostgreSQL binaries, no user to run them as, or the server
            did not start (with its log).
    """
    bin_dir = postgres_bin_dir()
    uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="posttrain-pg-"))
    data_dir = root / "data"
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    log = root / "postgres.log"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
        os.chown(pwfile, uid, gid)
    os.chmod(pwfile, 0o600)
    as_user: dict[str, Any] = {"user": uid, "group": gid, "extra_groups": []} if uid else {}
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            cwd=root,
            **as_user,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise ServiceUnavailable(
            f"initdb failed: {exc.stderr.decode(errors='replace').strip()}"
        ) from None
    finally:
        pwfile.unlink(missing_ok=True)
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            **as_user,
        )
    server = PostgresServer(port=port, user=user, password=password, data_dir=root, process=process)
    try:
        _wait_for_port(port, process, "postgres", log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # listening is not yet accepting: the startup checkpoint runs first
            try:
                for name in databases:
                    server.create_database(name)
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.3)
    except BaseException:
        server.stop()
        raise
    return server


# -- S3-compatible object store -------------------------------------------------------


@dataclass
class S3Server:
    """moto's S3 server running in a thread of this process."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    _server: Any = field(repr=False)

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self, name: str) -> None:
        """Create ``name`` (idempotent)."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that reach this server's credentials."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def stop(self) -> None:
        self._server.stop()


def start_s3(region: str = "us-east-1") -> S3Server:
    """Start moto's S3 server on a free port of 127.0.0.1, with random credentials.

    Raises:
        ServiceUnavailable: ``moto[server]`` is not installed.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ServiceUnavailable(
            "moto[server] is not installed (pip install -r requirements.lock)"
        ) from None
    port = free_port()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(
        endpoint=f"http://127.0.0.1:{port}",
        region=region,
        access_key_id="AKIA" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        _server=server,
    )
    _wait_for_port(port, None, "moto S3 server", Path("/dev/null"))
    return s3


# -- Ray cluster ----------------------------------------------------------------------


@dataclass
class RayCluster:
    """A head node and worker nodes, each a ``ray start --block`` process group."""

    address: str
    client_address: str
    temp_dir: Path
    nodes: list[subprocess.Popen[bytes]] = field(repr=False)
    worker_cpus: list[int]
    auth_token: str = field(repr=False, default="")

    def environment(self) -> dict[str, str]:
        """What a driver needs in its environment to join: Ray's token authentication.

        Ray 2.60 turns token authentication on for ``ray start --head``; the cluster's
        token is random and reaches drivers only through the environment.
        """
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.auth_token}

    def add_worker(self, num_cpus: int = 1) -> None:
        """Start one more worker node with ``num_cpus`` CPUs and wait until it joined."""
        index = len(self.nodes)
        self.nodes.append(
            _start_node(
                [f"--address={self.address}", f"--num-cpus={num_cpus}"],
                self.temp_dir / f"worker-{index}.log",
                self.environment(),
                f"Ray worker node {index} of the cluster at {self.address}",
            )
        )
        self.worker_cpus.append(num_cpus)

    def stop(self) -> None:
        """Stop every node this cluster started (workers first), by process group id."""
        _stop_groups(list(reversed(self.nodes)))
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _ray_executable() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else shutil.which("ray") or "ray"


def _ray_node(args: list[str], log: Path, auth: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ray start --block`` with its own ports, in a new session (its own process group)."""
    ports = [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                _ray_executable(),
                "start",
                "--block",
                "--node-ip-address=127.0.0.1",
                "--disable-usage-stats",
                "--include-log-monitor=false",
                *ports,
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def _start_node(
    args: list[str], log: Path, auth: dict[str, str], what: str, attempts: int = 3
) -> subprocess.Popen[bytes]:
    """Start a node and wait until it printed "Ray runtime started" (its raylet has
    registered with the GCS), trying again when it gave up.

    ``ray start`` gives a raylet a fixed 30 s to register; on a loaded machine (a shared
    2-core CI runner) that can run out, and a second try usually succeeds.
    """
    for attempt in range(attempts):
        node = _ray_node(args, log, auth)
        deadline = time.monotonic() + START_TIMEOUT_S
        while node.poll() is None and time.monotonic() < deadline:
            if "Ray runtime started" in log.read_text(errors="replace"):
                return node
            time.sleep(0.2)
        _stop_groups([node])
        if attempt == attempts - 1:
            raise ServiceUnavailable(
                f"{what} did not start ({attempts} tries); its log {log}:\n{_tail(log)}"
            )
    raise AssertionError("unreachable")  # pragma: no cover


def start_ray_cluster(workers: int = 1, cpus_per_worker: int = 1) -> RayCluster:
    """Start a Ray head (0 CPUs) and ``workers`` worker nodes on 127.0.0.1.

    The head holds no CPUs, so every task runs on a worker node: a run that finished
    proves the work went to the cluster. Connect with ``ray.init(address=cluster.address)``
    or through Ray Client at ``cluster.client_address``.

    Raises:
        ServiceUnavailable: a node did not start or join (with its log).
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="ptray-", dir="/tmp"))
    token = secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = free_port()
    client_port = free_port()
    head = _start_node(
        [
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={client_port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir / 'session'}",
        ],
        temp_dir / "head.log",
        auth,
        f"the Ray head at 127.0.0.1:{port}",
    )
    cluster = RayCluster(
        address=f"127.0.0.1:{port}",
        client_address=f"ray://127.0.0.1:{client_port}",
        temp_dir=temp_dir,
        nodes=[head],
        worker_cpus=[],
        auth_token=token,
    )
    try:
        for _ in range(workers):
            cluster.add_worker(cpus_per_worker)
    except BaseException:
        cluster.stop()
        raise
    return cluster
