"""`make demo-capture` end to end, in a fresh home: the capture loop closes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_the_capture_demo_cuts_a_labeled_version_from_captured_sessions(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home)
    env = {
        **os.environ,
        "POSTTRAIN_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(dagster_home),
        "POSTTRAIN_DAGSTER_STORAGE": str(tmp_path / "dagster-storage"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "posttrain.demo_capture"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "capture failures: 0" in output
    assert "outcomes sensor: new bronze.outcomes snapshot" in output
    assert "new corpus version labeled@v1" in output
