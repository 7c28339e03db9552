"""The one Dagster ``Definitions`` of posttrain: it only composes.

Why the in-process executor by default: the heavy stages already fan out over Ray, so
running each asset in its own subprocess would only start one Ray runtime per step and
fight it for the same cores. One process per run keeps one Ray runtime for the whole run.
A run that wants one process per step (a Ray cluster configured, so steps only connect
to it; independent assets in parallel) asks for it in its run config:
``execution: {config: {multiprocess: {max_concurrent: 4}}}``.
"""

from __future__ import annotations

import dagster as dg

from posttrain.assets.bronze import bronze_records
from posttrain.assets.erasures import erasures
from posttrain.assets.evals import eval_assets, eval_results
from posttrain.assets.experiments import checkpoints_table, experiments_table
from posttrain.assets.gold import gold_sft, gold_sft_packed
from posttrain.assets.outcomes import bronze_outcomes, lineage_filtered_snapshots, silver_labeled
from posttrain.assets.preference import gold_dpo, silver_preferences
from posttrain.assets.rl import gold_rl_prompts, silver_rollouts
from posttrain.assets.silver import silver_tables
from posttrain.assets.versions import corpus_versions
from posttrain.assets.viewer import row_notes, vibe_checks
from posttrain.jobs import jobs, sensors
from posttrain.resources import (
    RayResource,
    TokenizerResource,
    WarehouseResource,
    WorkspaceReaderResource,
)

all_assets = [
    bronze_records,
    *eval_assets,
    silver_tables,
    gold_sft,
    gold_sft_packed,
    silver_preferences,
    gold_dpo,
    gold_rl_prompts,
    silver_rollouts,
    silver_labeled,
]
# Tables written outside Dagster (the CLI, the Python API), shown in the graph and watched
# by sensors.
external_assets = [
    bronze_outcomes,
    lineage_filtered_snapshots,
    corpus_versions,
    erasures,
    vibe_checks,
    row_notes,
    experiments_table,
    checkpoints_table,
    eval_results,
]

# Dagster's multi_or_in_process_executor with the other default: in-process unless a run's
# config selects multiprocess.
in_process_or_multiprocess_executor = dg.ExecutorDefinition(
    name="in_process_or_multiprocess",
    config_schema=dg.Field(
        dg.multi_or_in_process_executor.config_schema.config_type,
        default_value={"in_process": {}},
    ),
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    requirements=dg.multi_or_in_process_executor.get_requirements,
    description="In-process (one Ray runtime per run) unless the run config selects multiprocess.",
)

defs = dg.Definitions(
    assets=[*all_assets, *external_assets],
    jobs=jobs,
    sensors=sensors,
    resources={
        "warehouse": WarehouseResource(),
        "ray": RayResource(),
        "tokenizer": TokenizerResource(),
        # Reads for one workspace (its token), scoped like `posttrain query --token`.
        "workspace_reader": WorkspaceReaderResource(),
    },
    executor=in_process_or_multiprocess_executor,
)


def resolve_job(name: str) -> dg.JobDefinition:
    """The job ``name`` with its resources bound: a reconstructable entry point for runs
    launched in other processes (``dg.build_reconstructable_job("posttrain.definitions",
    "resolve_job", reconstructable_kwargs={"name": ...})``)."""
    return defs.resolve_job_def(name)
