"""Jobs (and, as they arrive, sensors and schedules) over the posttrain assets."""

from __future__ import annotations

import dagster as dg

from posttrain.jobs.capture import capture_sensor
from posttrain.jobs.outcomes import outcomes_loop, outcomes_sensor
from posttrain.jobs.versions import corpus_version_job, corpus_versions_sensor

# The whole SFT medallion: bronze → silver → gold, with the eval tables it checks against.
sft_pipeline = dg.define_asset_job(
    name="sft_pipeline",
    selection=dg.AssetSelection.groups("bronze", "eval", "silver", "gold"),
    description="Ingest the configured sources and rebuild silver and the gold SFT corpora.",
)

# The preference corpus: silver.preferences → gold.dpo, from the bronze and eval tables
# already materialized.
preference_pipeline = dg.define_asset_job(
    name="preference_pipeline",
    selection=dg.AssetSelection.groups("preference"),
    description="Rebuild silver.preferences and gold.dpo from bronze (pairs, checks, dedup).",
)

# The RL corpus: gold.rl_prompts from the eval and silver tables already materialized, and
# the rollouts that re-enter (scored, rejection-sampled, paired).
rl_pipeline = dg.define_asset_job(
    name="rl_pipeline",
    selection=dg.AssetSelection.groups("rl"),
    description="Rebuild gold.rl_prompts (every verifier proven on its reference) and the "
    "rollout tables: scored rollouts, their rejections, DPO pairs.",
)

# Gold again, once the rollouts are scored: gold.sft takes the rollouts rejection sampling kept.
gold_pipeline = dg.define_asset_job(
    name="gold_pipeline",
    selection=dg.AssetSelection.groups("gold"),
    description="Rebuild gold.sft (silver + kept rollouts) and its packing for the tokenizer.",
)

jobs: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    sft_pipeline,
    preference_pipeline,
    rl_pipeline,
    gold_pipeline,
    corpus_version_job,
    outcomes_loop,
]
sensors: list[dg.SensorDefinition] = [corpus_versions_sensor, outcomes_sensor, capture_sensor]
