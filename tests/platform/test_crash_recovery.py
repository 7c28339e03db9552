"""After ``kill -9`` of a silver build, the next build leaves the warehouse consistent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from posttrain.platform import checks
from posttrain.platform.doctor import diagnose
from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.silver.pipeline import SilverConfig, build_silver
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

# Builds silver and stops forever once bronze is read, just before the first commit.
HANGING_BUILD = textwrap.dedent(
    """
    import sys, time
    from posttrain.platform.execution import InProcessExecutor
    from posttrain.platform.silver.pipeline import SilverConfig, build_silver
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings

    def hang(message):
        if "records read from bronze" in message:
            print("about to commit", flush=True)
            time.sleep(600)

    warehouse = Warehouse(WarehouseSettings.local(sys.argv[1]))
    build_silver(warehouse, SilverConfig(), InProcessExecutor(), log=hang)
    """
)


def test_a_silver_build_killed_before_its_commits_is_redone_by_the_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    warehouse = Warehouse(WarehouseSettings.local(home))
    seed_humaneval(warehouse)
    path = tmp_path / "chats.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"What colour is sky number {n}?"},
                        {"role": "assistant", "content": f"Sky number {n} is blue at noon."},
                    ]
                }
            )
            + "\n"
            for n in range(6)
        )
    )
    ingest(warehouse, [SourceSpec(path=path, source="skies")])
    build = subprocess.Popen(
        [sys.executable, "-c", HANGING_BUILD, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert build.stdout is not None and build.stdout.readline().strip() == "about to commit"
    finally:
        os.kill(build.pid, signal.SIGKILL)
        build.wait()

    assert (
        not warehouse.exists("silver.conversations")
        or warehouse.info("silver.conversations").rows == 0
    )
    report = build_silver(warehouse, SilverConfig(), InProcessExecutor())

    assert report.rows_in == 6
    outcome = checks.rows_conserved(warehouse)
    assert outcome.passed, outcome.description
    assert diagnose(warehouse).healthy
