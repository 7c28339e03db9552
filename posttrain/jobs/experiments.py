"""The experiment job (its run config is the experiment) and the sensor on ``experiments/``.

``experiment_job`` runs three ops: ``experiment_manifest`` freezes and records the manifest
(before any compute; its metadata is the manifest, shown in the UI), ``experiment_train``
trains with TRL and registers the checkpoint, ``experiment_evals`` runs the eval suites on
it. The logic lives in :mod:`posttrain.platform.experiments.launch`.

``experiments_sensor`` reads every ``*.yaml`` under the experiments folder and requests one
run per config hash (the run key, also kept in the cursor): a new or changed file launches
once, an unchanged one (or one changed only in comments or layout) never again.
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from posttrain.assets._support import table_key
from posttrain.platform.errors import ConfigError
from posttrain.platform.experiments.config import ExperimentConfigError, parse_experiment
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import posttrain_home, project_root
from posttrain.resources.warehouse import WarehouseResource

EXPERIMENTS_DIR_ENV = "POSTTRAIN_EXPERIMENTS_DIR"


def experiments_folder() -> Path:
    """``$POSTTRAIN_EXPERIMENTS_DIR``, else ``experiments/`` in the project root."""
    configured = os.environ.get(EXPERIMENTS_DIR_ENV)
    return Path(configured) if configured else project_root() / "experiments"


class ExperimentRunConfig(dg.Config):
    """The experiment to run: its file's text (or a recorded manifest to re-run)."""

    config_yaml: str = Field(default="", description="The experiment file's YAML text.")
    path: str = Field(default="", description="The file it came from (recorded in the manifest).")
    manifest: str = Field(default="", description="Re-run this experiment or manifest id instead.")
    output_dir: str = Field(
        default="", description="Checkpoint folder; default <home>/checkpoints."
    )


def _text(value: object) -> dg.MetadataValue:
    return dg.MetadataValue.text(str(value))


@dg.op(description="Freeze the experiment's manifest in lineage.experiments (no compute).")
def experiment_manifest(
    context: dg.OpExecutionContext, config: ExperimentRunConfig, warehouse: WarehouseResource
) -> dg.Output[dict[str, Any]]:
    from posttrain.platform.experiments.launch import prepare

    wh = warehouse.open()
    if config.manifest:
        frozen = prepare(wh, manifest=config.manifest)
    elif config.config_yaml:
        frozen = prepare(wh, text=config.config_yaml, config_path=config.path or "<run config>")
    elif config.path:
        frozen = prepare(wh, path=Path(config.path))
    else:
        raise ConfigError("experiment_job needs config_yaml, path or manifest in its run config")
    metadata = {
        "experiment_id": _text(frozen.experiment_id),
        "manifest_id": _text(frozen.manifest_id),
        "config_hash": _text(frozen.config_hash),
        "trainer": _text(frozen.trainer),
        "snapshots": dg.MetadataValue.json(frozen.snapshots),
        "code_version": _text(frozen.code_version),
        "package_versions": dg.MetadataValue.json(frozen.package_versions),
        "manifest": dg.MetadataValue.json(frozen.as_dict()),
    }
    context.log_event(
        dg.AssetMaterialization(
            asset_key=table_key(TableName.LINEAGE_EXPERIMENTS), metadata=metadata
        )
    )
    context.add_output_metadata(metadata)
    return dg.Output(frozen.as_dict())


@dg.op(description="Train the manifest with TRL; register the checkpoint in lineage.checkpoints.")
def experiment_train(
    context: dg.OpExecutionContext,
    config: ExperimentRunConfig,
    manifest: dict[str, Any],
    warehouse: WarehouseResource,
) -> dg.Output[dict[str, Any]]:
    from posttrain.platform.experiments.manifest import find_manifest
    from posttrain.platform.experiments.train import run_training

    wh = warehouse.open()
    frozen = find_manifest(wh, manifest["experiment_id"])
    root = Path(config.output_dir) if config.output_dir else posttrain_home() / "checkpoints"
    checkpoint = run_training(wh, frozen, root, log=context.log.info).checkpoint
    metadata = {
        "checkpoint_id": _text(checkpoint.checkpoint_id),
        "path": _text(checkpoint.path),
        "step": dg.MetadataValue.int(checkpoint.step),
        "examples": dg.MetadataValue.int(checkpoint.examples),
        "stream_digest": _text(checkpoint.stream_digest),
        "metrics": dg.MetadataValue.json(checkpoint.metrics),
    }
    context.log_event(
        dg.AssetMaterialization(
            asset_key=table_key(TableName.LINEAGE_CHECKPOINTS), metadata=metadata
        )
    )
    return dg.Output(
        {**checkpoint.__dict__, "created_at": str(checkpoint.created_at)}, metadata=metadata
    )


@dg.op(description="Run the experiment's eval suites on its checkpoint (eval.results).")
def experiment_evals(
    manifest: dict[str, Any], checkpoint: dict[str, Any], warehouse: WarehouseResource
) -> dg.Output[list[dict[str, Any]]]:
    from posttrain.platform.evals.cache import CACHE_FILE, EvalCache
    from posttrain.platform.experiments.evals import run_eval_suites
    from posttrain.platform.experiments.manifest import find_manifest
    from posttrain.platform.settings import load_settings

    wh = warehouse.open()
    outcomes = run_eval_suites(
        wh,
        find_manifest(wh, manifest["experiment_id"]),
        checkpoint_id=checkpoint["checkpoint_id"],
        checkpoint_path=checkpoint["path"],
        cache=EvalCache(load_settings(warehouse.home).home / CACHE_FILE),
    )
    found = [o.__dict__ for o in outcomes]
    return dg.Output(found, metadata={"evals": dg.MetadataValue.json(found)})


@dg.job(
    description="An experiment: manifest (before any compute) → TRL training → checkpoint → "
    "evals. Its run config is the experiment file's text.",
    tags={"posttrain/kind": "experiment"},
)
def experiment_job() -> None:
    manifest = experiment_manifest()
    experiment_evals(manifest, experiment_train(manifest))


def run_key(config_hash: str) -> str:
    """One run per experiment config, whatever the tick."""
    return f"experiment:{config_hash}"


@dg.sensor(
    job=experiment_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="A new or changed file under experiments/ → one run of experiment_job per "
    "config hash (run key and cursor). Invalid files are skipped with their errors logged.",
)
def experiments_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    folder = experiments_folder()
    seen: set[str] = set(json.loads(context.cursor)) if context.cursor else set()
    requests = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            parsed = parse_experiment(path.read_text(), path)
        except (ExperimentConfigError, OSError, UnicodeDecodeError) as exc:
            context.log.warning(f"skipping {path}: {exc}")
            continue
        config_hash = parsed.config.config_hash()
        if config_hash in seen:
            continue
        seen.add(config_hash)
        requests.append(
            dg.RunRequest(
                run_key=run_key(config_hash),
                run_config=dg.RunConfig(
                    ops={
                        "experiment_manifest": ExperimentRunConfig(
                            config_yaml=parsed.text, path=str(path)
                        ),
                        "experiment_train": ExperimentRunConfig(),
                    }
                ),
                tags={
                    "posttrain/experiment": parsed.config.name,
                    "posttrain/config-hash": config_hash,
                },
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(seen)))
