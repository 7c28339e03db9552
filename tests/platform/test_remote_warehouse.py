"""The warehouse on a real Postgres catalog and a real S3-compatible store, and its secrets.

The servers are started by ``tests/services.py`` (Postgres once per session, moto's S3
server in-process); credentials reach pyiceberg only through the environment or a
dagster-aws resource, and no printed form of the settings shows them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from dagster_aws.s3 import S3Resource

from posttrain.platform.errors import CatalogError, ConfigError
from posttrain.platform.local_stack import PostgresServer, S3Server
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource

SCHEMA = pa.schema([pa.field("n", pa.int64(), nullable=False)])


def _remote(
    monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, s3: S3Server, bucket: str
) -> Warehouse:
    s3.create_bucket(bucket)
    for key, value in s3.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POSTTRAIN_CATALOG_URI", postgres.url("posttrain"))
    monkeypatch.setenv("POSTTRAIN_WAREHOUSE", f"s3://{bucket}/wh")
    monkeypatch.setenv("POSTTRAIN_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("POSTTRAIN_S3_REGION", s3.region)
    return Warehouse(load_settings().warehouse)


def test_tables_on_postgres_and_s3_round_trip(
    monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, s3: S3Server
) -> None:
    warehouse = _remote(monkeypatch, postgres, s3, "lake-roundtrip")
    warehouse.catalog.create_namespace("roundtrip")
    table = warehouse.catalog.create_table("roundtrip.numbers", schema=SCHEMA)
    table.append(pa.table({"n": [1, 2, 3]}, schema=SCHEMA))

    again = Warehouse(load_settings().warehouse)
    assert again.read("roundtrip.numbers")["n"].to_pylist() == [1, 2, 3]
    assert again.table("roundtrip.numbers").metadata_location.startswith("s3://lake-roundtrip/")
    assert "roundtrip.numbers" in again.table_names()


def test_writers_racing_on_the_postgres_catalog_lose_no_commit(
    monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, s3: S3Server
) -> None:
    from posttrain.platform.lineage import Lineage

    warehouse = _remote(monkeypatch, postgres, s3, "lake-race")
    warehouse.catalog.create_namespace("race")
    warehouse.catalog.create_table("race.numbers", schema=SCHEMA)
    settings = warehouse.settings
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            mine = Warehouse(settings)  # its own catalog connection, as another process
            barrier.wait()
            for index in range(5):
                batch = pa.table({"n": [offset + index]}, schema=SCHEMA)
                mine.append("race.numbers", batch, Lineage("race"))
        except BaseException as exc:  # reported below: a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,), daemon=True) for o in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    numbers = sorted(Warehouse(settings).read("race.numbers")["n"].to_pylist())
    assert numbers == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]


def test_a_wrong_postgres_password_names_the_catalog_but_never_a_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.url("posttrain").replace(postgres.password, "wrong-" + postgres.password)
    settings = WarehouseSettings(catalog_uri=wrong, warehouse="s3://nowhere/wh")
    with pytest.raises(CatalogError) as raised:
        Warehouse(settings)
    message = str(raised.value)
    assert f"127.0.0.1:{postgres.port}/posttrain" in message
    assert postgres.password not in message


def test_settings_from_the_environment_never_print_their_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t-value-never-shown")
    monkeypatch.setenv("PG_PASSWORD", "pg-password-never-shown")
    (tmp_path / "posttrain.yaml").write_text(
        "warehouse:\n"
        "  catalog_uri: postgresql+psycopg://posttrain:${PG_PASSWORD}@db:5432/lake\n"
        "  warehouse: s3://lake/wh\n"
        "  properties:\n"
        "    s3.access-key-id: AKIAEXAMPLE\n"
        "    s3.secret-access-key: ${LAKE_SECRET}\n"
        "    s3.session-token: ${LAKE_SECRET}\n"
    )
    monkeypatch.setenv("POSTTRAIN_S3_ENDPOINT", "http://minio:9000")
    settings = load_settings(tmp_path)
    # The secret is there for pyiceberg...
    assert settings.warehouse.catalog_properties()["s3.secret-access-key"] == (
        "s3cr3t-value-never-shown"
    )
    assert settings.warehouse.properties["s3.endpoint"] == "http://minio:9000"
    # ...and in no printed form.
    for shown in (
        repr(settings),
        str(settings),
        f"{settings.warehouse}",
        repr(settings.warehouse.redacted()),
        settings.warehouse.describe(),
    ):
        assert "s3cr3t-value-never-shown" not in shown
        assert "pg-password-never-shown" not in shown
    assert settings.warehouse.redacted()["properties"]["s3.access-key-id"] == "AKIAEXAMPLE"


def test_a_bad_settings_file_error_never_prints_its_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t-value-never-shown")
    (tmp_path / "posttrain.yaml").write_text(
        "warehouse:\n"
        "  catalog_type: postgres\n"  # not a catalog type: the whole section is rejected
        "  warehouse: s3://lake/wh\n"
        "  properties:\n"
        "    s3.secret-access-key: ${LAKE_SECRET}\n"
        "    bad: [1, 2]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path)
    assert "catalog_type" in str(raised.value)
    assert "s3cr3t-value-never-shown" not in str(raised.value)


def test_a_dagster_aws_s3_resource_configures_the_s3_file_io(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t-from-envvar")
    seen: dict[str, object] = {}

    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:
        settings = warehouse.settings()
        seen["properties"] = dict(settings.properties)
        seen["repr"] = repr(settings)

    resource = WarehouseResource(
        home=str(tmp_path),
        warehouse="s3://lake/wh",
        s3=S3Resource(
            endpoint_url="http://minio:9000",
            region_name="eu-west-1",
            aws_access_key_id="AKIAEXAMPLE",
            aws_secret_access_key=dg.EnvVar("LAKE_SECRET"),
        ),
    )
    assert dg.materialize([probe], resources={"warehouse": resource}).success
    assert seen["properties"] == {
        "s3.endpoint": "http://minio:9000",
        "s3.region": "eu-west-1",
        "s3.access-key-id": "AKIAEXAMPLE",
        "s3.secret-access-key": "s3cr3t-from-envvar",
    }
    assert "s3cr3t-from-envvar" not in str(seen["repr"])
