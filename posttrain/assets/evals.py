"""``eval/*``: benchmark items, scored against and kept out of training data, and
``eval/results``, the scores of every eval run."""

import dagster as dg

from posttrain.assets._support import (
    WRITER_POOLS,
    Stopwatch,
    integrity_check_specs,
    table_metadata,
    table_result,
    table_spec,
)
from posttrain.platform.evals import BENCHMARKS, Benchmark, seed_benchmark
from posttrain.platform.evals.compare import compare, comparison_markdown
from posttrain.platform.evals.suites import SUITES
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse
from posttrain.resources import WarehouseResource


def benchmark_asset(benchmark: Benchmark) -> dg.AssetsDefinition:
    """An asset that seeds ``benchmark``'s ``eval.*`` table from its shipped data."""
    table = benchmark.table

    @dg.multi_asset(
        name=table.replace(".", "__"),
        pool=WRITER_POOLS["eval"],
        specs=[table_spec(benchmark.spec, group="eval")],
        check_specs=integrity_check_specs(benchmark.spec),
    )
    def seed(warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.open()
        with Stopwatch.run() as watch:
            snapshot_id = seed_benchmark(wh, benchmark)
        info = wh.info(table, snapshot_id)
        return table_result(
            wh,
            benchmark.spec,
            snapshot_id,
            metadata=table_metadata(
                wh,
                table,
                snapshot_id=snapshot_id,
                seconds=watch.seconds,
                rows_processed=info.rows,
                bytes_processed=info.size_bytes,
                extra={
                    "benchmark": benchmark.name,
                    "decontam_columns": ", ".join(benchmark.text_columns),
                },
            ),
        )

    return seed


eval_assets = [benchmark_asset(benchmark) for benchmark in BENCHMARKS.values()]


# ``eval.results`` is written by eval runs (``posttrain eval run``, the versions sensor's
# job, experiment launches), never materialized by Dagster: an external asset whose
# materialization events carry the comparison across checkpoints and corpus versions.
eval_results = table_spec(
    TableName.EVAL_RESULTS,
    group="evals",
    deps=sorted({suite.table for suite in SUITES.values()}),
)


def comparison_metadata(wh: Warehouse, snapshot_id: int | None) -> dict[str, dg.MetadataValue]:
    """The eval comparison as asset metadata: a Markdown table with the plot, and counts."""
    runs = compare(wh, snapshot_id=snapshot_id)
    return {
        "comparison": dg.MetadataValue.md(comparison_markdown(runs)),
        "runs": dg.MetadataValue.int(len(runs)),
        "snapshot_id": dg.MetadataValue.text(str(snapshot_id)),
        "scores": dg.MetadataValue.json(
            {
                run.run_id: {
                    "suite": run.suite,
                    "score": round(run.score, 4),
                    "model": run.model,
                    "corpus_version": run.corpus_version,
                }
                for run in runs
            }
        ),
    }
