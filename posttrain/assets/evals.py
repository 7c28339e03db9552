"""``eval/*``: benchmark items, scored against and kept out of training data."""

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
