"""Jobs (and, as they arrive, sensors and schedules) over the posttrain assets."""

from __future__ import annotations

import dagster as dg

from posttrain.jobs.versions import corpus_version_job, corpus_versions_sensor

# The whole SFT medallion: bronze → silver → gold, with the eval tables it checks against.
sft_pipeline = dg.define_asset_job(
    name="sft_pipeline",
    selection=dg.AssetSelection.groups("bronze", "eval", "silver", "gold"),
    description="Ingest the configured sources and rebuild silver and the gold SFT corpora.",
)

# The RL corpus: gold.rl_prompts from the eval and silver tables already materialized.
rl_pipeline = dg.define_asset_job(
    name="rl_pipeline",
    selection=dg.AssetSelection.groups("rl"),
    description="Rebuild gold.rl_prompts and prove every verifier on its reference.",
)

jobs: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    sft_pipeline,
    rl_pipeline,
    corpus_version_job,
]
sensors: list[dg.SensorDefinition] = [corpus_versions_sensor]
