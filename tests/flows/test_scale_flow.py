"""The SFT medallion scaled out by configuration alone: Postgres, S3 and a Ray cluster.

One run of the ``sft_pipeline`` job (ingest → silver → gold, with its asset checks) goes
through the code location as deployed: the real ``posttrain.definitions`` resolve their
settings from ``POSTTRAIN_*`` variables only; Dagster's instance is
``deploy/dagster.postgres.yaml`` on a real PostgreSQL server; the run uses the
multiprocess executor, so every step is its own process that connects to a local Ray
cluster (a head and a separate worker node) and reaches the Iceberg catalog on Postgres
(psycopg) and table data on an S3 server (pyarrow's S3 file IO). The same job also runs
embedded (SQLite, local folder, in-process) and both must give the same tables, gold
Parquet files byte for byte.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from posttrain.platform import checks
from posttrain.platform.lineage import CODE_VERSION_KEY, CONFIG_HASH_KEY, INPUT_PREFIX
from posttrain.platform.local_stack import PostgresServer, RayCluster, S3Server
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Columns stamped with the wall clock at ingest: equal runs differ only there.
CLOCK_COLUMNS = {"ingested_at", "arrived_at", "created_at"}


@dataclass
class Flow:
    scaled: Warehouse
    embedded: Warehouse
    result: dg.ExecutionResult
    instance: dg.DagsterInstance
    env: dict[str, str]


def scaled_environment(
    home: Path, postgres: PostgresServer, s3: S3Server, cluster: RayCluster, bucket: str
) -> dict[str, str]:
    """Every setting of a scaled-out deployment, as the environment carries it."""
    return {
        "POSTTRAIN_HOME": str(home),
        "POSTTRAIN_CATALOG_URI": postgres.url("posttrain"),
        "POSTTRAIN_WAREHOUSE": f"s3://{bucket}/warehouse",
        "POSTTRAIN_S3_ENDPOINT": s3.endpoint,
        "POSTTRAIN_S3_REGION": s3.region,
        "POSTTRAIN_RAY_ADDRESS": cluster.address,
        **s3.environment(),
        **cluster.environment(),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_USER": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "POSTTRAIN_DAGSTER_STORAGE": str(home / "dagster-storage"),
    }


def _file_digests(warehouse: Warehouse, name: str) -> list[str]:
    io = warehouse.table(name).io
    return sorted(
        hashlib.sha256(io.new_input(task.file.file_path).open().read()).hexdigest()
        for task in warehouse.table(name).scan().plan_files()
    )


def _content(warehouse: Warehouse, name: str) -> pa.Table:
    table = warehouse.read(name)
    table = table.drop_columns([c for c in table.column_names if c in CLOCK_COLUMNS])
    return table.sort_by([("record_id", "ascending")])


@pytest.fixture(scope="module")
def flow(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    s3: S3Server,
    ray_cluster: RayCluster,
) -> Iterator[Flow]:
    root = tmp_path_factory.mktemp("scale")
    s3.create_bucket("lake-flow")
    env = scaled_environment(root / "scaled", postgres, s3, ray_cluster, "lake-flow")
    dagster_home = root / "dagster-home"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml")
    job = dg.build_reconstructable_job(
        "posttrain.definitions", "resolve_job", reconstructable_kwargs={"name": "sft_pipeline"}
    )
    with pytest.MonkeyPatch.context() as patch:
        # The embedded baseline: the same job, no settings but a home, all in this process.
        patch.setenv("POSTTRAIN_HOME", str(root / "embedded"))
        patch.setenv("POSTTRAIN_EXECUTOR", "in_process")
        from posttrain.definitions import defs

        baseline = defs.resolve_job_def("sft_pipeline").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
        )
        assert baseline.success
        embedded = Warehouse(load_settings().warehouse)
        patch.delenv("POSTTRAIN_EXECUTOR")
        for key, value in env.items():
            patch.setenv(key, value)
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        result = dg.execute_job(
            job,
            instance=instance,
            run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
            raise_on_error=False,
        )
        scaled = Warehouse(load_settings().warehouse)
        try:
            yield Flow(scaled, embedded, result, instance, env)
        finally:
            instance.dispose()


def test_the_run_succeeds_with_every_check_passing(flow: Flow) -> None:
    failures = [
        f"{e.step_key}: {e.message} {getattr(e.event_specific_data, 'error', '')}"
        for e in flow.result.all_events
        if e.is_failure or getattr(e.event_specific_data, "error", None)
    ]
    assert flow.result.success, failures
    evaluations = flow.result.get_asset_check_evaluations()
    assert evaluations
    assert [e.check_name for e in evaluations if not e.passed] == []


def test_the_run_and_its_events_are_stored_in_postgres(flow: Flow) -> None:
    assert type(flow.instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(flow.instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    record = flow.instance.get_run_record_by_id(flow.result.run_id)
    assert record is not None and record.dagster_run.is_success
    materialization = flow.instance.get_latest_materialization_event(
        dg.AssetKey(["gold", "sft_packed"])
    )
    assert materialization is not None
    assert materialization.run_id == flow.result.run_id


def test_every_step_ran_in_its_own_process(flow: Flow) -> None:
    # STEP_START is emitted by the process that runs the step; the orchestrating process
    # also logs step-keyed engine events (a worker starting), so those do not count.
    step_pids = {e.pid for e in flow.result.all_events if e.is_step_start and e.pid is not None}
    import os

    assert os.getpid() not in step_pids
    assert len(step_pids) >= 4


def test_heavy_stages_ran_on_the_ray_cluster(flow: Flow) -> None:
    logs = [
        record.user_message
        for record in flow.instance.all_logs(flow.result.run_id)
        if "heavy stages run on" in record.user_message
    ]
    assert logs, "no step reported where its heavy stages ran"
    port = flow.env["POSTTRAIN_RAY_ADDRESS"].rsplit(":", 1)[1]
    for message in logs:
        # The head has no CPU: these 2 are the worker node's, in another process tree.
        assert f":{port}: 2 node(s), 2 CPU(s)" in message, message


def test_tables_live_in_the_postgres_catalog_and_on_s3(flow: Flow) -> None:
    assert flow.scaled.settings.catalog_uri.startswith("postgresql+psycopg://")
    gold = flow.scaled.table("gold.sft_packed")
    assert gold.metadata_location.startswith("s3://lake-flow/warehouse/")
    keys = [
        item["Key"]
        for page in flow_s3_pages(flow)
        for item in page.get("Contents", [])
        if item["Key"].endswith(".parquet")
    ]
    assert any(key.startswith("warehouse/gold") for key in keys)


def flow_s3_pages(flow: Flow) -> list[dict[str, object]]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=flow.env["POSTTRAIN_S3_ENDPOINT"],
        region_name=flow.env["POSTTRAIN_S3_REGION"],
        aws_access_key_id=flow.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=flow.env["AWS_SECRET_ACCESS_KEY"],
    )
    return list(client.get_paginator("list_objects_v2").paginate(Bucket="lake-flow"))


def test_rows_are_conserved_and_snapshots_record_their_lineage(flow: Flow) -> None:
    outcome = checks.rows_conserved(flow.scaled)
    assert outcome.passed, outcome.description
    summary = flow.scaled.snapshot_summary("gold.sft_packed")
    assert summary[INPUT_PREFIX + "gold.sft"] == str(flow.scaled.snapshot_id("gold.sft"))
    assert summary[CONFIG_HASH_KEY] and summary[CODE_VERSION_KEY]


def test_dedup_and_tokenization_give_the_embedded_runs_output(flow: Flow) -> None:
    for name in ("silver.conversations", "silver.rejections", "gold.sft"):
        assert _content(flow.scaled, name).equals(_content(flow.embedded, name)), name
    # Tokenized, packed gold: the same Parquet bytes, from S3 and from the local folder.
    for name in ("gold.sft", "gold.sft_packed"):
        assert _file_digests(flow.scaled, name) == _file_digests(flow.embedded, name), name


def test_no_secret_reaches_the_run_log(flow: Flow) -> None:
    secrets = (
        flow.env["AWS_SECRET_ACCESS_KEY"],
        flow.env["DAGSTER_PG_PASSWORD"],
        flow.env["RAY_AUTH_TOKEN"],
    )
    for record in flow.instance.all_logs(flow.result.run_id):
        text = f"{record.user_message} {record.dagster_event!r}"
        for secret in secrets:
            assert secret not in text
