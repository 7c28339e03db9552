"""The deploy kit parses and holds together, and no file of it holds a secret.

Docker and Helm are not on the test machine (``docker compose config`` needs the compose
plugin, ``helm template`` the chart repositories), so this checks what the kit relies on:
each YAML file parses, the compose services, commands and environment the README names
are there, the Dagster instance file is the one the scale-out flow test runs on, and every
password, key and token is an environment reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
# Keys that hold a secret value (not the name of a Kubernetes Secret, like envSecrets).
SECRET_KEY = re.compile(r"(password|secret_access_key|token)$", re.IGNORECASE)


def _load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


@pytest.mark.parametrize(
    "name",
    [
        "compose.yaml",
        "dagster.postgres.yaml",
        "workspace.yaml",
        "helm/dagster-values.yaml",
        "helm/raycluster.yaml",
        "helm/minio-values.yaml",
    ],
)
def test_every_deploy_file_parses_and_holds_no_secret(name: str) -> None:
    loaded = _load(name)
    assert isinstance(loaded, dict) and loaded
    for path, value in _walk(loaded):
        if isinstance(value, str) and SECRET_KEY.search(path.rsplit(".", 1)[-1]):
            assert value.startswith("${") or value == "", f"{name}: {path} is a literal"
        if isinstance(value, str) and "://" in value and "@" in value:
            assert re.search(r"://[^:/]+:\$\{", value), f"{name}: {path} embeds credentials"


def test_compose_runs_every_piece_of_the_deployment() -> None:
    compose = _load("compose.yaml")
    services = compose["services"]
    assert {
        "postgres",
        "minio",
        "create-bucket",
        "ray-head",
        "ray-worker",
        "code-location",
        "webserver",
        "daemon",
    } <= set(services)
    assert "posttrain.definitions" in services["code-location"]["command"]
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    head = services["ray-head"]["command"]
    assert "--head" in head and "--num-cpus=0" in head
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    # Every process that reaches the warehouse gets the same settings.
    for name in ("code-location", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["POSTTRAIN_RAY_ADDRESS"] == "ray-head:6379"
        assert env["POSTTRAIN_CATALOG_URI"].startswith("postgresql+psycopg://")
        assert env["POSTTRAIN_WAREHOUSE"].startswith("s3://")
        assert env["DAGSTER_PG_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for build in (services[name].get("build") for name in ("ray-head", "code-location")):
        assert build == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / "Dockerfile").is_file()
    assert (DEPLOY / "initdb" / "10-dagster-db.sql").is_file()


def test_the_dagster_instance_file_reads_postgres_settings_from_the_environment() -> None:
    storage = _load("dagster.postgres.yaml")["storage"]["postgres"]["postgres_db"]
    for key in ("hostname", "port", "db_name", "username", "password"):
        assert set(storage[key]) == {"env"}, key
    assert storage["scheme"] == "postgresql+psycopg2"
    workspace = _load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert workspace["host"] == "code-location" and workspace["port"] == 4000


def test_helm_values_name_the_code_location_run_launcher_and_ray_cluster() -> None:
    values = _load("helm/dagster-values.yaml")
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "posttrain.definitions"]
    assert {"name": "posttrain-env"} in deployment["envSecrets"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["POSTTRAIN_RAY_ADDRESS"].startswith("posttrain-ray-head-svc")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] is True
    ray = _load("helm/raycluster.yaml")
    assert ray["apiVersion"] == "ray.io/v1" and ray["kind"] == "RayCluster"
    assert ray["metadata"]["name"] + "-head-svc" == env["POSTTRAIN_RAY_ADDRESS"].split(".")[0]
    assert ray["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert ray["spec"]["workerGroupSpecs"][0]["replicas"] >= 1
