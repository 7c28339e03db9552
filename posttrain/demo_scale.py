"""``make demo-scale``: the same demo as ``make demo``, scaled out on this machine.

Starts a throwaway PostgreSQL server (Dagster's instance and the Iceberg catalog), an
S3-compatible server (moto, the table data) and a Ray cluster (a head and two worker
processes, the heavy stages), points posttrain at them with environment variables only
(as a deployment would: ``deploy/README.md``), runs :mod:`posttrain.demo` unchanged,
prints where each piece ran, and stops everything it started, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from posttrain.platform.local_stack import PostgresServer, RayCluster, S3Server
from posttrain.platform.settings import project_root


def _where(rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    from posttrain.cli._app import console

    view = Table(title="Where each piece runs", header_style="bold")
    view.add_column("piece")
    view.add_column("where")
    for piece, where in rows:
        view.add_row(piece, where)
    console.print(view)


def main() -> int:
    """Start the services, run the demo against them, stop them."""
    from posttrain.platform.local_stack import (
        ServiceUnavailable,
        start_postgres,
        start_ray_cluster,
        start_s3,
    )

    started: list[PostgresServer | S3Server | RayCluster] = []
    root = Path(tempfile.mkdtemp(prefix="posttrain-demo-scale-"))
    try:
        print("starting PostgreSQL, the S3 server and a Ray cluster (head + 2 workers)...")
        postgres = start_postgres(databases=("posttrain", "dagster"))
        started.append(postgres)
        s3 = start_s3()
        started.append(s3)
        s3.create_bucket("posttrain-lake")
        cluster = start_ray_cluster(workers=2, cpus_per_worker=1)
        started.append(cluster)
    except ServiceUnavailable as exc:
        print(f"demo-scale: cannot start a service: {exc}", file=sys.stderr)
        _stop(started, root)
        return 1
    try:
        dagster_home = root / "dagster"
        dagster_home.mkdir()
        shutil.copy(
            project_root() / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml"
        )
        # Only configuration changes: the demo below is the same code as `make demo`.
        os.environ.update(
            {
                "POSTTRAIN_HOME": str(root / "home"),
                "POSTTRAIN_CATALOG_URI": postgres.url("posttrain"),
                "POSTTRAIN_WAREHOUSE": "s3://posttrain-lake/warehouse",
                "POSTTRAIN_S3_ENDPOINT": s3.endpoint,
                "POSTTRAIN_S3_REGION": s3.region,
                "POSTTRAIN_RAY_ADDRESS": cluster.address,
                **s3.environment(),
                **cluster.environment(),
                "DAGSTER_HOME": str(dagster_home),
                "DAGSTER_PG_HOST": postgres.host,
                "DAGSTER_PG_PORT": str(postgres.port),
                "DAGSTER_PG_DB": "dagster",
                "DAGSTER_PG_USER": postgres.user,
                "DAGSTER_PG_PASSWORD": postgres.password,
                "POSTTRAIN_DAGSTER_STORAGE": str(root / "dagster-storage"),
            }
        )
        head, *workers = cluster.nodes
        pids = ", ".join(str(node.pid) for node in workers)
        where = [
            (
                "Dagster instance (runs, events, schedules)",
                f"PostgreSQL {postgres.host}:{postgres.port}/dagster "
                f"(pid {postgres.process.pid}; deploy/dagster.postgres.yaml)",
            ),
            (
                "Iceberg catalog",
                f"PostgreSQL {postgres.host}:{postgres.port}/posttrain (SQL catalog, psycopg)",
            ),
            ("table data", f"s3://posttrain-lake/warehouse on the S3 server at {s3.endpoint}"),
            (
                "dedup, decontamination, tokenization",
                f"Ray cluster {cluster.address}: head (no CPU, pid {head.pid}) + "
                f"{len(cluster.worker_cpus)} worker nodes (pids {pids})",
            ),
            ("Dagster runs (the drivers)", f"this process, pid {os.getpid()}"),
        ]
        _where(where)
        from posttrain import demo

        code = demo.main()
        _where(where)
        return code
    finally:
        import ray

        ray.shutdown()
        _stop(started, root)


def _stop(started: list[PostgresServer | S3Server | RayCluster], root: Path) -> None:
    for service in reversed(started):
        service.stop()
    shutil.rmtree(root, ignore_errors=True)
    if started:
        print("stopped the Ray cluster, the S3 server and PostgreSQL; their data is deleted")


if __name__ == "__main__":
    sys.exit(main())
