"""The code location loads and its asset graph is the one DESIGN.md describes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from posttrain.definitions import all_assets, defs

REPO_ROOT = Path(__file__).resolve().parents[1]


def _asset_keys() -> set[str]:
    return {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}


def test_every_table_is_an_asset_in_its_layer_group() -> None:
    groups = {spec.key.to_user_string(): spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups == {
        "bronze/records": "bronze",
        "eval/humaneval": "eval",
        "silver/conversations": "silver",
        "silver/rejections": "silver",
        "gold/sft": "gold",
        "gold/sft_packed": "gold",
    }


def test_layers_depend_on_the_layer_below() -> None:
    deps = {
        spec.key.to_user_string(): {dep.asset_key.to_user_string() for dep in spec.deps}
        for spec in defs.resolve_all_asset_specs()
    }
    assert deps["silver/conversations"] == {"bronze/records", "eval/humaneval"}
    assert deps["gold/sft"] == {"silver/conversations"}
    assert deps["gold/sft_packed"] == {"gold/sft"}


def test_every_asset_has_blocking_checks() -> None:
    blocking: dict[str, set[str]] = {}
    for check in (spec for asset in all_assets for spec in asset.check_specs):
        if check.blocking:
            blocking.setdefault(check.asset_key.to_user_string(), set()).add(check.name)
    assert set(blocking) == _asset_keys()
    assert "rows_conserved" in blocking["silver/conversations"]
    assert "contamination_within_bounds" in blocking["gold/sft"]
    assert "every_record_packed_once" in blocking["gold/sft_packed"]


def test_pipeline_job_selects_every_asset() -> None:
    job = defs.resolve_job_def("sft_pipeline")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == _asset_keys()


def test_resources_default_to_the_embedded_warehouse_and_local_ray() -> None:
    resources = defs.resources or {}
    assert set(resources) == {"warehouse", "ray", "tokenizer"}
    assert resources["ray"].address is None and resources["ray"].mode == "ray"
    assert resources["warehouse"].catalog_uri is None


def test_dagster_cli_validates_the_code_location(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(REPO_ROOT),
        "POSTTRAIN_DAGSTER_STORAGE": str(tmp_path),
        "POSTTRAIN_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "All code locations passed validation" in result.stderr + result.stdout


@pytest.mark.parametrize("bad", [{"near_dup_threshold": 1.5}, {"near_dup_threshold": -0.1}])
def test_bad_silver_config_fails_before_anything_is_written(
    bad: dict[str, float], tmp_path: Path
) -> None:
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings
    from posttrain.resources import RayResource, WarehouseResource

    result = dg.materialize(
        all_assets,
        selection=["silver/conversations", "silver/rejections"],
        resources={
            "warehouse": WarehouseResource(home=str(tmp_path)),
            "ray": RayResource(mode="in_process"),
            "tokenizer": dg.ResourceDefinition.none_resource(),
        },
        run_config={"ops": {"silver_tables": {"config": bad}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "threshold" in str(failure.step_failure_data.error)
    assert Warehouse(WarehouseSettings.local(tmp_path)).table_names() == []


def test_writers_of_each_layer_share_one_concurrency_pool() -> None:
    pools = {key.to_user_string(): asset.op.pool for asset in all_assets for key in asset.keys}
    assert pools == {
        "bronze/records": "posttrain-bronze",
        "eval/humaneval": "posttrain-eval",
        "silver/conversations": "posttrain-silver",
        "silver/rejections": "posttrain-silver",
        "gold/sft": "posttrain-gold",
        "gold/sft_packed": "posttrain-gold",
    }


def test_the_instance_serializes_pools_and_monitors_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTTRAIN_DAGSTER_STORAGE", str(tmp_path))
    with dg.DagsterInstance.from_config(str(REPO_ROOT)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        # A run whose worker was killed with -9 is failed after this, not "started" forever.
        assert 0 < instance.run_monitoring_max_runtime_seconds <= 24 * 3600
