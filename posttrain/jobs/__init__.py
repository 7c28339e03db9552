"""Jobs (and, as they arrive, sensors and schedules) over the posttrain assets."""

from __future__ import annotations

import dagster as dg

# The whole SFT medallion: bronze → silver → gold, with the eval tables it checks against.
sft_pipeline = dg.define_asset_job(
    name="sft_pipeline",
    selection=dg.AssetSelection.groups("bronze", "eval", "silver", "gold"),
    description="Ingest the configured sources and rebuild silver and the gold SFT corpora.",
)

# The preference corpus: bronze (with the eval tables it checks against) → silver.preferences
# → gold.dpo.
preference_pipeline = dg.define_asset_job(
    name="preference_pipeline",
    selection=dg.AssetSelection.groups("bronze", "eval", "preference"),
    description="Ingest the configured sources and rebuild silver.preferences and gold.dpo.",
)

jobs = [sft_pipeline, preference_pipeline]
