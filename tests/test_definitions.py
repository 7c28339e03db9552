"""The code location loads and its asset graph is the one DESIGN.md describes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from posttrain.assets._support import table_key
from posttrain.definitions import all_assets, defs
from posttrain.platform.evals import benchmark_tables
from posttrain.platform.schemas import TABLES, TableName, column_doc
from posttrain.platform.settings import ExecutorSettings, WarehouseSettings
from posttrain.platform.warehouse import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tables written outside Dagster (the CLI, the Python API: outcomes, filtered snapshots,
# ``posttrain version create``, ``posttrain forget``): in the graph, materialized by no job.
EXTERNAL = {
    "bronze/outcomes",
    "lineage/filtered_snapshots",
    "lineage/corpus_versions",
    "lineage/erasures",
}


def _asset_keys() -> set[str]:
    """The keys of the assets Dagster materializes."""
    return {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()} - EXTERNAL


def test_every_table_is_an_asset_in_its_layer_group() -> None:
    groups = {spec.key.to_user_string(): spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups == {
        "bronze/records": "bronze",
        "lineage/sources": "bronze",
        "eval/humaneval": "eval",
        "silver/conversations": "silver",
        "silver/rejections": "silver",
        "gold/sft": "gold",
        "gold/sft_packed": "gold",
        "bronze/outcomes": "outcomes",
        "silver/labeled": "outcomes",
        "lineage/filtered_snapshots": "outcomes",
        "silver/preferences": "preference",
        "silver/preference_rejections": "preference",
        "gold/dpo": "preference",
        "gold/rl_prompts": "rl",
        "gold/rl_prompts_rejections": "rl",
        "lineage/corpus_versions": "versions",
        "silver/rollouts": "rl",
        "silver/rollout_rejections": "rl",
        "lineage/erasures": "lineage",
    }


def test_layers_depend_on_the_layer_below() -> None:
    deps = {
        spec.key.to_user_string(): {dep.asset_key.to_user_string() for dep in spec.deps}
        for spec in defs.resolve_all_asset_specs()
    }
    assert deps["silver/conversations"] == {"bronze/records", "eval/humaneval"}
    assert deps["gold/sft"] == {"silver/conversations", "silver/rollouts"}
    assert deps["gold/sft_packed"] == {"gold/sft"}
    preference_inputs = {"bronze/records", "bronze/outcomes", "eval/humaneval"}
    assert deps["silver/preferences"] == preference_inputs
    assert deps["silver/preference_rejections"] == preference_inputs
    # silver/rollouts writes the rollout pairs of silver.preferences, which gold.dpo takes.
    assert deps["gold/dpo"] == {"silver/preferences", "silver/rollouts"}
    assert deps["gold/rl_prompts"] == {"silver/conversations", "eval/humaneval"}
    rollout_inputs = {"bronze/records", "gold/rl_prompts", "silver/conversations", "eval/humaneval"}
    for table in ("silver/rollouts", "silver/rollout_rejections"):
        assert deps[table] == rollout_inputs


def test_silver_depends_on_every_registered_benchmark() -> None:
    # A benchmark registered before the code location loads becomes an input of silver.
    script = """
import json
import pyarrow as pa
from posttrain.platform.evals import Benchmark, register_benchmark
from posttrain.platform.schemas import TableSpec

schema = pa.schema([pa.field("item_id", pa.string(), nullable=False), ("question", pa.string())])
register_benchmark(
    Benchmark("tiny", TableSpec("eval.tiny", schema, ("item_id",), "Tiny."), schema.empty_table)
)
from posttrain.definitions import defs

print(json.dumps({
    spec.key.to_user_string(): sorted(dep.asset_key.to_user_string() for dep in spec.deps)
    for spec in defs.resolve_all_asset_specs()
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    deps = json.loads(result.stdout.strip().splitlines()[-1])
    assert deps["silver/conversations"] == ["bronze/records", "eval/humaneval", "eval/tiny"]
    assert deps["silver/rejections"] == ["bronze/records", "eval/humaneval", "eval/tiny"]


def test_every_eval_asset_is_an_input_of_silver() -> None:
    deps = {
        spec.key.to_user_string(): {dep.asset_key.to_user_string() for dep in spec.deps}
        for spec in defs.resolve_all_asset_specs()
    }
    evals = {key for key in deps if key.startswith("eval/")}
    assert evals == {table_key(table).to_user_string() for table in benchmark_tables()}
    assert evals <= deps["silver/conversations"]


def test_every_asset_has_blocking_checks() -> None:
    blocking: dict[str, set[str]] = {}
    for check in (spec for asset in all_assets for spec in asset.check_specs):
        if check.blocking:
            blocking.setdefault(check.asset_key.to_user_string(), set()).add(check.name)
    # Written outside Dagster (CLI, Python API): no materialization to check.
    assert set(blocking) == _asset_keys() - EXTERNAL
    assert "rows_conserved" in blocking["silver/conversations"]
    assert "contamination_within_bounds" in blocking["gold/sft"]
    assert "every_record_packed_once" in blocking["gold/sft_packed"]
    assert {"record_id_unique", "history_complete"} <= blocking["silver/labeled"]
    assert {"verifiers_pass_references", "prompt_id_unique", "schema_matches"} <= blocking[
        "gold/rl_prompts"
    ]
    assert {"rollouts_conserved", "record_id_unique"} <= blocking["silver/rollouts"]
    assert "pack_key_pack_id_unique" in blocking["gold/sft_packed"]
    assert {"rows_conserved", "chosen_differs", "pair_id_unique", "schema_matches"} <= blocking[
        "silver/preferences"
    ]
    assert {"units_unique", "schema_matches"} <= blocking["silver/preference_rejections"]
    assert {
        "prompts_not_contaminated",
        "chosen_differs",
        "pair_id_unique",
        "schema_matches",
    } <= blocking["gold/dpo"]


def _job_assets(name: str) -> set[str]:
    job = defs.resolve_job_def(name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


PREFERENCE_ASSETS = {"silver/preferences", "silver/preference_rejections", "gold/dpo"}


def test_the_pipeline_jobs_select_every_asset() -> None:
    rl = _job_assets("rl_pipeline")
    assert rl == {
        "gold/rl_prompts",
        "gold/rl_prompts_rejections",
        "silver/rollouts",
        "silver/rollout_rejections",
    }
    outcomes = _job_assets("outcomes_loop")
    assert outcomes == {"silver/labeled"}
    assert _job_assets("preference_pipeline") == PREFERENCE_ASSETS
    assert (
        _job_assets("sft_pipeline") == _asset_keys() - rl - outcomes - PREFERENCE_ASSETS - EXTERNAL
    )
    assert _job_assets("gold_pipeline") == {"gold/sft", "gold/sft_packed"}


def test_labeled_depends_on_conversations_records_and_outcomes() -> None:
    deps = {
        spec.key.to_user_string(): {dep.asset_key.to_user_string() for dep in spec.deps}
        for spec in defs.resolve_all_asset_specs()
    }
    assert deps["silver/labeled"] == {"silver/conversations", "bronze/records", "bronze/outcomes"}


def test_outcomes_sensor_runs_the_outcomes_loop_and_ships_stopped() -> None:
    sensor = defs.resolve_sensor_def("outcomes_sensor")
    job = defs.resolve_job_def("outcomes_loop")
    assert sensor.job_name == "outcomes_loop"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 60
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        "silver/labeled"
    }


def test_the_capture_sensor_observes_bronze_and_runs_by_default() -> None:
    sensor = defs.resolve_sensor_def("capture_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert not sensor.has_jobs  # it only records observations, it starts no run
    assert sensor.minimum_interval_seconds == 30


def test_preference_assets_materialize_with_checks_and_margin_histogram(tmp_path: Path) -> None:
    from posttrain.platform.evals import seed_humaneval
    from posttrain.platform.ingest.bronze import ingest
    from posttrain.platform.ingest.sources import load_sources
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings
    from posttrain.resources import RayResource, WarehouseResource

    warehouse = Warehouse(WarehouseSettings.local(tmp_path))
    seed_humaneval(warehouse)
    folder = REPO_ROOT / "data" / "samples" / "preferences"
    specs = load_sources(REPO_ROOT / "data" / "sources.yaml", base_dir=REPO_ROOT)
    ingest(warehouse, [spec for spec in specs if folder in Path(spec.path).resolve().parents])
    result = dg.materialize(
        all_assets,
        selection=sorted(PREFERENCE_ASSETS),
        resources={
            "warehouse": WarehouseResource(home=str(tmp_path)),
            "ray": RayResource(mode="in_process"),
            "tokenizer": dg.ResourceDefinition.none_resource(),
        },
        run_config={"ops": {"silver_preferences": {"config": {"pairing_rule": "best_vs_each"}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    (pairs,) = [
        m.materialization
        for m in result.get_asset_materialization_events()
        if m.materialization.asset_key == table_key("silver.preferences")
    ]
    assert pairs.metadata["pairing_rule"].value == "best_vs_each"
    assert pairs.metadata["margin_histogram"].value.startswith("| margin | pairs |")
    rejections = next(
        m.materialization
        for m in result.get_asset_materialization_events()
        if m.materialization.asset_key == table_key("silver.preference_rejections")
    )
    assert rejections.metadata["rejected_by_reason"].value["no_pairs"] == 2


def test_resources_default_to_the_embedded_warehouse_and_local_ray() -> None:
    resources = defs.resources or {}
    assert set(resources) == {"warehouse", "ray", "tokenizer", "workspace_reader"}
    # Every field unset: the settings file or environment decide, else the embedded default.
    assert resources["ray"].address is None and resources["ray"].mode is None
    assert resources["ray"].executor_settings() == ExecutorSettings(kind="ray")
    assert resources["warehouse"].catalog_uri is None
    assert resources["warehouse"].settings() == WarehouseSettings.local()


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


def test_gold_checks_contamination_with_the_decontamination_silver_used(tmp_path: Path) -> None:
    from posttrain.platform.decontam import DecontamConfig
    from posttrain.platform.evals import load_humaneval, seed_humaneval
    from posttrain.platform.ingest.bronze import ingest
    from posttrain.platform.ingest.sources import SourceSpec
    from posttrain.platform.schemas import TableName
    from posttrain.platform.warehouse import Warehouse, WarehouseSettings
    from posttrain.resources import RayResource, WarehouseResource

    warehouse = Warehouse(WarehouseSettings.local(tmp_path))
    seed_humaneval(warehouse)
    # 25 words of a HumanEval prompt: contaminated under the default 13-grams, not under
    # the 64-grams this silver run is configured with, so silver keeps it.
    quoted = " ".join(str(load_humaneval().column("prompt")[0]).split()[:25])
    record = {
        "messages": [
            {"role": "user", "content": f"What does this Python snippet do? {quoted}"},
            {
                "role": "assistant",
                "content": "It declares a function and documents it; the body is missing, so "
                "calling it returns None until you implement the comparison loop.",
            },
        ]
    }
    path = tmp_path / "leaky.jsonl"
    path.write_text(json.dumps(record) + "\n")
    ingest(warehouse, [SourceSpec(path=path, source="leaky")])

    result = dg.materialize(
        all_assets,
        selection=["silver/conversations", "silver/rejections", "gold/sft"],
        resources={
            "warehouse": WarehouseResource(home=str(tmp_path)),
            "ray": RayResource(mode="in_process"),
            "tokenizer": dg.ResourceDefinition.none_resource(),
        },
        run_config={"ops": {"silver_tables": {"config": {"decontam_ngram": 64}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    recorded = DecontamConfig.recorded(warehouse.snapshot_summary(TableName.SILVER_CONVERSATIONS))
    assert recorded == DecontamConfig(ngram=64)
    assert warehouse.info(TableName.GOLD_SFT).rows == 1
    (check,) = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "contamination_within_bounds"
    ]
    assert check.passed, check.description
    assert check.metadata["ngram"].value == 64
    assert result.success


def test_every_column_of_every_table_has_a_doc() -> None:
    undocumented = [
        f"{name}.{field.name}"
        for name, spec in TABLES.items()
        for field in spec.schema
        if not column_doc(field)
    ]
    assert undocumented == []


def test_column_docs_become_iceberg_column_docs(warehouse: Warehouse) -> None:
    for spec in TABLES.values():
        iceberg = warehouse.ensure_table(spec).schema()
        assert {field.name: field.doc for field in iceberg.fields} == {
            field.name: column_doc(field) for field in spec.schema
        }, spec.name


COLUMN_DOCS = """
{
  assetNodes {
    assetKey { path }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry { schema { columns { name description } } }
    }
  }
}
"""


def test_the_ui_shows_every_tables_column_docs(tmp_path: Path) -> None:
    # The query the asset page's Overview tab makes, against the code location as
    # `dagster dev` loads it (a gRPC server in a subprocess).
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        define_out_of_process_context(
            str(REPO_ROOT / "posttrain" / "definitions.py"), "defs", instance
        ) as context,
    ):
        result = execute_dagster_graphql(context, COLUMN_DOCS)
    shown = {}
    for node in result.data["assetNodes"]:
        (entry,) = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
        shown[".".join(node["assetKey"]["path"])] = {
            column["name"]: column["description"] for column in entry["schema"]["columns"]
        }
    # lineage.pack_keys is bookkeeping of gold/sft_packed (one row per packing), not an asset.
    assert shown == {
        name: {field.name: column_doc(field) for field in spec.schema}
        for name, spec in TABLES.items()
        if name != TableName.LINEAGE_PACK_KEYS
    }


def test_the_versions_sensor_starts_the_version_job_and_is_off_until_switched_on() -> None:
    (sensor,) = [s for s in defs.sensors or [] if s.name == "corpus_versions_sensor"]
    assert isinstance(sensor, dg.SensorDefinition)
    assert sensor.job_name == "corpus_version_job"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    deps = {
        spec.key.to_user_string(): {dep.asset_key.to_user_string() for dep in spec.deps}
        for spec in defs.resolve_all_asset_specs()
    }
    assert {"gold/sft", "gold/sft_packed"} <= deps["lineage/corpus_versions"]


def test_writers_of_each_layer_share_one_concurrency_pool() -> None:
    pools = {key.to_user_string(): asset.op.pool for asset in all_assets for key in asset.keys}
    assert pools == {
        "bronze/records": "posttrain-bronze",
        "lineage/sources": "posttrain-bronze",
        "eval/humaneval": "posttrain-eval",
        "silver/conversations": "posttrain-silver",
        "silver/rejections": "posttrain-silver",
        "gold/sft": "posttrain-gold",
        "gold/sft_packed": "posttrain-gold",
        "silver/labeled": "posttrain-silver",
        "gold/rl_prompts": "posttrain-gold",
        "gold/rl_prompts_rejections": "posttrain-gold",
        "silver/rollouts": "posttrain-silver",
        "silver/rollout_rejections": "posttrain-silver",
        "silver/preferences": "posttrain-silver",
        "silver/preference_rejections": "posttrain-silver",
        "gold/dpo": "posttrain-gold",
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
