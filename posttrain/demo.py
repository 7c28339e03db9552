"""``make demo``: materialize the whole asset graph on the shipped sample data.

Runs the ``sft_pipeline``, ``rl_pipeline``, ``preference_pipeline`` and ``gold_pipeline``
jobs in this process against the Dagster instance configured by the root ``dagster.yaml``
(so the runs, their metadata and check results show up in the UI afterwards), then prints
what was built and where to look.
"""

from __future__ import annotations

import sys
import time

import dagster as dg
from rich.table import Table

from posttrain.cli._app import console
from posttrain.cli.tables import tables_view
from posttrain.instance import prepare_instance
from posttrain.platform.query import run_query
from posttrain.platform.settings import load_settings, project_root
from posttrain.platform.warehouse import Warehouse


def _print_rejections(warehouse: Warehouse) -> None:
    counts = run_query(
        warehouse,
        "select reason, count(*) as records from silver.rejections group by reason order by 2 desc",
    )
    view = Table(title="Why records were refused (silver.rejections)", header_style="bold")
    view.add_column("reason")
    view.add_column("records", justify="right")
    for row in counts.to_pylist():
        view.add_row(row["reason"], f"{row['records']:,}")
    console.print(view)


def _outcomes_loop(
    defs: dg.Definitions, instance: dg.DagsterInstance, warehouse: Warehouse
) -> list[str] | None:
    """Outcomes arrive in two batches; each time ``outcomes_loop`` runs as the outcomes
    sensor would run it, cutting ``labeled@v1`` and then ``labeled@v2``."""
    from posttrain.platform.outcomes.ingest import ingest_outcome_file

    run_ids = []
    for batch in ("first_batch.jsonl", "late_batch.jsonl"):
        report = ingest_outcome_file(warehouse, project_root() / "data" / "outcomes" / batch)
        console.print(f"outcomes {batch}: {report.rows_added:,} new of {report.rows_read:,}")
        result = defs.resolve_job_def("outcomes_loop").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": "INFO"}}},
                "ops": {"silver_labeled": {"config": {"cut_version": True}}},
            },
        )
        if not result.success:
            console.print(f"[bold red]The outcomes_loop run {result.run_id} failed[/]")
            return None
        run_ids.append(result.run_id)
    return run_ids


def main() -> int:
    """Run the pipeline job; print tables, rejections, and where to look next."""
    from posttrain.definitions import defs

    settings = load_settings()  # a bad settings file fails here, before the run writes
    started = time.monotonic()
    instance = dg.DagsterInstance.get()
    prepare_instance(instance)
    console.rule("posttrain demo: materializing bronze → silver → gold → DPO pairs → RL prompts")
    # The RL and preference corpora read bronze, silver and the eval tables, so their jobs
    # run once those are built; RL first, since its rollout pairs go into silver.preferences
    # and gold.dpo takes them; then gold again, to take the rollouts that rejection
    # sampling kept.
    run_ids = []
    for job in ("sft_pipeline", "rl_pipeline", "preference_pipeline", "gold_pipeline"):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            raise_on_error=False,
            # Progress and check results, without Dagster's per-event debug lines.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        if not result.success:
            console.print(
                f"[bold red]The {job} run {result.run_id} failed[/]; see the log above "
                "or open the run in the UI (make ui)."
            )
            return 1
        run_ids.append(result.run_id)
    warehouse = Warehouse(settings.warehouse)
    loop = _outcomes_loop(defs, instance, warehouse)
    if loop is None:
        return 1
    run_ids += loop
    elapsed = time.monotonic() - started
    console.rule(f"done in {elapsed:.0f}s (runs {', '.join(run_ids)})")
    console.print(tables_view(warehouse, title="Tables"))
    _print_rejections(warehouse)
    console.print(
        f"\nWarehouse: [bold]{settings.home}[/] ({settings.warehouse.describe()})\n"
        "Look around:\n"
        "  make ui                                  Dagster UI on http://127.0.0.1:3000 "
        "(asset graph, metadata, checks, this run)\n"
        "  .venv/bin/posttrain tables               every table, rows, snapshot, size\n"
        "  .venv/bin/posttrain show silver.rejections --where \"reason = 'near_dup'\"\n"
        '  .venv/bin/posttrain query "select source, count(*) from gold.sft group by 1"\n'
        "  .venv/bin/posttrain query "
        '"select sft_status, count(*) from silver.rollouts group by 1"\n'
        "  .venv/bin/posttrain verify --prompt-id humaneval:HumanEval/0 --completion FILE\n"
        "  .venv/bin/posttrain show silver.labeled --columns record_id,reward,num_outcomes "
        '--where "reward > 0"\n'
        '  .venv/bin/posttrain snapshot silver.labeled --filter "reward > 0 and source = '
        "'agent-traces'\" --as agent-pos\n",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
