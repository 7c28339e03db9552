"""Real services for tests: Postgres, an S3-compatible store (moto), a local Ray cluster.

Imported by ``tests/conftest.py``, so any test can ask for ``postgres``, ``s3`` or
``ray_cluster``. Each starts on 127.0.0.1 and a free port the first time a test needs it
(Postgres and S3 once per session, the Ray cluster once per module: it is the expensive
one) and is stopped at teardown, by process id. They are started by
:mod:`posttrain.platform.local_stack`, the same code as ``make demo-scale``.

A service that cannot be started here skips the tests that need it, with the reason; under
CI (``CI`` set, as ``.ci/run`` runs) it fails them instead, since CI installs everything
these services need and a skip there would hide a regression.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from posttrain.platform.local_stack import (
    PostgresServer,
    RayCluster,
    S3Server,
    ServiceUnavailable,
    start_postgres,
    start_ray_cluster,
    start_s3,
)


def _unavailable(service: str, exc: ServiceUnavailable) -> None:
    message = f"{service} cannot be started here: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server with databases ``posttrain`` and ``dagster``."""
    try:
        server = start_postgres(databases=("posttrain", "dagster"))
    except ServiceUnavailable as exc:
        _unavailable("PostgreSQL", exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 server with random credentials (not in the environment: tests pass them)."""
    try:
        server = start_s3()
    except ServiceUnavailable as exc:
        _unavailable("the S3 server", exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray head (no CPUs) and one worker node with 2 CPUs, as separate processes."""
    try:
        cluster = start_ray_cluster(workers=1, cpus_per_worker=2)
    except ServiceUnavailable as exc:
        _unavailable("the Ray cluster", exc)
        raise
    try:
        yield cluster
    finally:
        cluster.stop()
