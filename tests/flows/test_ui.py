"""`make ui` for real: `dagster dev` serves the asset graph and a run launched through its
GraphQL API (what the UI's Materialize button calls) materializes every table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from posttrain.platform.warehouse import Warehouse, WarehouseSettings

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSET_NODES = "{ assetNodes { assetKey { path } groupName hasAssetChecks } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """`dagster dev` on 127.0.0.1 with the repo's dagster.yaml and a temporary home."""
    home = tmp_path_factory.mktemp("ui-home")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(REPO_ROOT),
        "POSTTRAIN_HOME": str(home),
        "POSTTRAIN_DAGSTER_STORAGE": str(home / "dagster"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    (home / "dagster").mkdir()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", 120, process)
        yield port, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _graphql(port: int, query: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        response = requests.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30
        )
        data = response.json()["data"]
        if data["assetNodes"] or time.monotonic() > deadline:  # code location still loading
            return data
        time.sleep(1)


def test_ui_serves_the_asset_graph_with_groups_and_checks(dagster_dev: tuple[int, Path]) -> None:
    port, _ = dagster_dev
    nodes = _graphql(port, ASSET_NODES)["assetNodes"]
    groups = {"/".join(node["assetKey"]["path"]): node["groupName"] for node in nodes}
    assert groups == {
        "bronze/records": "bronze",
        "lineage/sources": "bronze",
        "eval/humaneval": "eval",
        "eval/math_heldout": "eval",
        "eval/results": "evals",
        "silver/conversations": "silver",
        "silver/rejections": "silver",
        "gold/sft": "gold",
        "gold/sft_packed": "gold",
        "gold/rl_prompts": "rl",
        "gold/rl_prompts_rejections": "rl",
        "silver/rollouts": "rl",
        "silver/rollout_rejections": "rl",
        "bronze/outcomes": "outcomes",
        "silver/labeled": "outcomes",
        "lineage/filtered_snapshots": "outcomes",
        "lineage/corpus_versions": "versions",
        "lineage/erasures": "lineage",
        "silver/preferences": "preference",
        "silver/preference_rejections": "preference",
        "gold/dpo": "preference",
        "lineage/experiments": "experiments",
        "lineage/checkpoints": "experiments",
        "lineage/vibe_checks": "viewer",
        "lineage/row_notes": "viewer",
    }
    # Tables written outside Dagster (CLI, Python API) have no materialization to check.
    external = {
        "bronze/outcomes",
        "lineage/filtered_snapshots",
        "lineage/corpus_versions",
        "lineage/erasures",
        "eval/results",
        "lineage/experiments",
        "lineage/checkpoints",
        "lineage/vibe_checks",
        "lineage/row_notes",
    }
    checked = {"/".join(node["assetKey"]["path"]) for node in nodes if node["hasAssetChecks"]}
    assert checked == set(groups) - external


def test_materializing_from_the_ui_fills_every_table(dagster_dev: tuple[int, Path]) -> None:
    port, home = dagster_dev
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution("sft_pipeline")
    deadline = time.monotonic() + 300
    status = client.get_run_status(run_id)
    while (
        status
        not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
        and time.monotonic() < deadline
    ):
        time.sleep(2)
        status = client.get_run_status(run_id)
    assert status == DagsterRunStatus.SUCCESS
    warehouse = Warehouse(WarehouseSettings.local(home))
    assert warehouse.info("gold.sft_packed").rows > 0
