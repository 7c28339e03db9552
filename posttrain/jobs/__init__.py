"""Jobs (and, as they arrive, sensors and schedules) over the posttrain assets."""

from __future__ import annotations

import dagster as dg

from posttrain.jobs.outcomes import outcomes_loop, outcomes_sensor

# The whole SFT medallion: bronze → silver → gold, with the eval tables it checks against.
sft_pipeline = dg.define_asset_job(
    name="sft_pipeline",
    selection=dg.AssetSelection.groups("bronze", "eval", "silver", "gold"),
    description="Ingest the configured sources and rebuild silver and the gold SFT corpora.",
)

jobs = [sft_pipeline, outcomes_loop]
sensors = [outcomes_sensor]
