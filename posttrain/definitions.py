"""The one Dagster ``Definitions`` of posttrain: it only composes.

Why the in-process executor: the heavy stages already fan out over Ray, so running each
asset in its own subprocess would only start one Ray runtime per step and fight it for
the same cores. One process per run keeps one Ray runtime for the whole run.
"""

from __future__ import annotations

import dagster as dg

from posttrain.assets.bronze import bronze_records
from posttrain.assets.erasures import erasures
from posttrain.assets.evals import eval_assets
from posttrain.assets.gold import gold_sft, gold_sft_packed
from posttrain.assets.rl import gold_rl_prompts
from posttrain.assets.silver import silver_tables
from posttrain.assets.versions import corpus_versions
from posttrain.jobs import jobs, sensors
from posttrain.resources import RayResource, TokenizerResource, WarehouseResource

all_assets = [
    bronze_records,
    *eval_assets,
    silver_tables,
    gold_sft,
    gold_sft_packed,
    gold_rl_prompts,
]

defs = dg.Definitions(
    assets=[*all_assets, corpus_versions, erasures],
    jobs=jobs,
    sensors=sensors,
    resources={
        "warehouse": WarehouseResource(),
        "ray": RayResource(),
        "tokenizer": TokenizerResource(),
    },
    executor=dg.in_process_executor,
)
