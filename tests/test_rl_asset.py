"""The gold/rl_prompts asset builds the table, blocks on its checks and reports its figures."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa

from posttrain.definitions import all_assets
from posttrain.platform.evals import load_humaneval
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import RayResource, WarehouseResource


def _materialize(home: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        all_assets,
        selection=["gold/rl_prompts", "gold/rl_prompts_rejections"],
        resources={
            "warehouse": WarehouseResource(home=str(home)),
            "ray": RayResource(mode="in_process"),
            "tokenizer": dg.ResourceDefinition.none_resource(),
        },
        run_config={"ops": {"gold_rl_prompts": {"config": {"math_sources": []}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_the_asset_reports_kinds_pass_rate_and_build_time(tmp_path: Path) -> None:
    warehouse = Warehouse(WarehouseSettings.local(tmp_path))
    problems = load_humaneval().slice(0, 3).to_pylist()
    problems[2]["canonical_solution"] = "    return None\n"  # cannot pass its own tests
    warehouse.overwrite(
        TableName.EVAL_HUMANEVAL,
        pa.Table.from_pylist(problems, schema=load_humaneval().schema),
        Lineage("test"),
    )
    result = _materialize(tmp_path)
    assert result.success
    (prompts,) = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["gold", "rl_prompts"])
    ]
    metadata = prompts.materialization.metadata
    assert metadata["verifier_kinds"].value == {"python_tests": 2}
    assert metadata["reference_pass_rate"].value == round(2 / 3, 4)
    assert metadata["build_time_s"].value > 0
    assert metadata["dagster/row_count"].value == 2
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["verifiers_pass_references"] and checks["prompt_id_unique"]
    assert warehouse.info(TableName.GOLD_RL_PROMPTS_REJECTIONS).rows == 1
