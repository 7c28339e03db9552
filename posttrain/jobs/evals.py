"""A job that refreshes the eval comparison shown on the ``eval/results`` asset.

Eval runs from the CLI or from experiment launches write ``eval.results`` outside Dagster;
this job reads the table and records the comparison (a table of every run and a plot of
the metric per corpus version) as an observation of ``eval/results``.
"""

import dagster as dg

from posttrain.assets._support import table_key
from posttrain.assets.evals import comparison_metadata
from posttrain.platform.schemas import TableName
from posttrain.resources.warehouse import WarehouseResource


@dg.op(description="Read eval.results and show the comparison on the eval/results asset.")
def eval_comparison(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> int:
    wh = warehouse.open()
    snapshot_id = wh.snapshot_id(TableName.EVAL_RESULTS)
    metadata = comparison_metadata(wh, snapshot_id)
    context.log_event(
        dg.AssetObservation(asset_key=table_key(TableName.EVAL_RESULTS), metadata=metadata)
    )
    runs = metadata["runs"].value
    assert isinstance(runs, int)
    return runs


@dg.job(
    description="Refresh the eval comparison (metric per checkpoint and corpus version) "
    "shown on eval/results, after evals run from the CLI.",
    tags={"posttrain/kind": "evals"},
)
def eval_comparison_job() -> None:
    eval_comparison()
