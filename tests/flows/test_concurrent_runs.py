"""Two Dagster runs of the same assets at once serialize on the layer's concurrency pool,
or the later one fails before writing anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from posttrain.instance import prepare_instance
from posttrain.platform import checks
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import load_sources
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
SILVER = "silver/conversations,silver/rejections"
IN_PROCESS = {"resources": {"ray": {"config": {"mode": "in_process"}}}}


def test_two_silver_runs_at_once_build_silver_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    seed_humaneval(warehouse)
    ingest(warehouse, load_sources(REPO_ROOT / "data" / "sources.yaml"))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "POSTTRAIN_DAGSTER_STORAGE": str(tmp_path / "storage"),
        "POSTTRAIN_HOME": str(home),
    }
    os.environ["POSTTRAIN_DAGSTER_STORAGE"] = env["POSTTRAIN_DAGSTER_STORAGE"]
    try:  # create the instance's storage and pools once, so the runs do not race to
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            prepare_instance(instance)
    finally:
        del os.environ["POSTTRAIN_DAGSTER_STORAGE"]
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "posttrain.definitions",
        "--select",
        SILVER,
        "--config-json",
        json.dumps(IN_PROCESS),
    ]
    runs = [
        subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [run.communicate(timeout=600)[0] for run in runs]

    # The pool serializes them: the later run waits for the slot. Dagster's claim of a slot
    # on the embedded SQLite storage is a select then an update with no row lock, so on a
    # heavily loaded machine both runs can get it; then the silver commit's snapshot check
    # refuses the later run before it writes anything. Either outcome is safe.
    failed = [log for run, log in zip(runs, logs, strict=True) if run.returncode != 0]
    if failed:
        assert len(failed) == 1, logs[0][-2000:] + logs[1][-2000:]
        assert "nothing was written, so re-running is safe" in failed[0], failed[0][-3000:]
    else:
        assert any("blocked by limit for pool posttrain-silver" in log for log in logs)
    # The later run found nothing new: silver was committed once, and conserves bronze.
    for name in ("silver.conversations", "silver.rejections"):
        assert len(warehouse.table(name).snapshots()) == 1
    assert checks.rows_conserved(warehouse).passed
