"""The experiment job in Dagster: its run config is the experiment file's text, and its
first step records the manifest (shown as metadata) before the training step runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from experiment_data import SFT

from posttrain.jobs.experiments import ExperimentRunConfig, experiment_job
from posttrain.platform.experiments.manifest import checkpoints, manifests
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse
from posttrain.resources.warehouse import WarehouseResource


def test_the_job_records_the_manifest_as_metadata_before_a_training_that_fails(
    filled: Warehouse, tmp_path: Path
) -> None:
    first = filled.snapshot_id(TableName.GOLD_SFT)
    text = SFT.format(first=first).lstrip()
    text = text.replace(f"    - ref: gold.sft@{first}\n      weight: 0.25\n", "")
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    text = text.replace("weight: 0.75", "weight: 1").replace("base: tiny", f"base: {not_a_model}")
    home = filled.settings.warehouse.removeprefix("file://").removesuffix("/warehouse")

    result = experiment_job.execute_in_process(
        run_config=dg.RunConfig(
            ops={
                "experiment_manifest": ExperimentRunConfig(config_yaml=text, path="job.yaml"),
                "experiment_train": ExperimentRunConfig(output_dir=str(tmp_path / "ckpt")),
            }
        ),
        resources={"warehouse": WarehouseResource(home=home)},
        raise_on_error=False,
    )

    assert not result.success
    (recorded,) = manifests(filled)
    assert recorded.config_path == "job.yaml"
    assert checkpoints(filled) == []
    (materialization,) = result.asset_materializations_for_node("experiment_manifest")
    assert materialization.asset_key == dg.AssetKey(["lineage", "experiments"])
    metadata = materialization.metadata
    assert metadata["manifest_id"].value == recorded.manifest_id
    assert metadata["snapshots"].value == {"gold.sft": filled.snapshot_id(TableName.GOLD_SFT)}
    assert metadata["manifest"].value["blend"]["sources"][0]["table"] == "gold.sft"
    failed = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failed] == ["experiment_train"]
