"""The versions sensor and the job it starts for each new corpus version.

The sensor's cursor is the snapshot id of ``lineage.corpus_versions`` it saw last; a tick
that finds a newer snapshot reads the versions added since and requests one run per new
version, with run key ``corpus@version`` so that no tick ever starts the same work twice.
The job records the version's summary statistics (rows per table, by source, license and
rejection reason) as run and asset metadata, and runs the evals configured for the corpus
(``evals.on_corpus_version`` in ``posttrain.yaml``, see
:class:`~posttrain.platform.settings.EvalSettings`), whose comparison becomes a
materialization of ``eval/results``.
"""

import dagster as dg

from posttrain.assets._support import table_key
from posttrain.assets.evals import comparison_metadata
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import load_settings
from posttrain.platform.version_stats import Breakdown, version_summary
from posttrain.platform.versions import CREATE, events, get_version
from posttrain.resources.warehouse import WarehouseResource


class VersionConfig(dg.Config):
    """Which corpus version the run is about."""

    corpus: str
    version: str


def _metadata(breakdown: Breakdown) -> dict[str, dg.MetadataValue]:
    return {
        "rows": dg.MetadataValue.int(breakdown.rows),
        **{
            f"by_{column}": dg.MetadataValue.json(dict(counts.most_common()))
            for column, counts in breakdown.by.items()
        },
    }


@dg.op(description="Rows per table, by source, license and rejection reason, of one version.")
def corpus_version_stats(
    context: dg.OpExecutionContext, config: VersionConfig, warehouse: WarehouseResource
) -> dg.Output[dict[str, dict[str, object]]]:
    wh = warehouse.open()
    version = get_version(wh, config.corpus, config.version)
    breakdowns = version_summary(wh, version)
    label = f"{config.corpus}@{config.version}"
    for table, breakdown in breakdowns.items():
        context.log_event(
            dg.AssetObservation(
                asset_key=table_key(table),
                metadata={
                    "corpus_version": dg.MetadataValue.text(label),
                    "snapshot_id": dg.MetadataValue.text(str(version.snapshots[table] or "-")),
                    **_metadata(breakdown),
                },
            )
        )
    summary = {table: b.as_dict() for table, b in breakdowns.items()}
    return dg.Output(
        summary,
        metadata={
            "corpus_version": dg.MetadataValue.text(label),
            "rows": dg.MetadataValue.json({t: b.rows for t, b in breakdowns.items()}),
            "summary": dg.MetadataValue.json(summary),
        },
    )


@dg.op(description="Run the eval suites configured for the corpus (evals.on_corpus_version).")
def corpus_version_evals(
    context: dg.OpExecutionContext, config: VersionConfig, warehouse: WarehouseResource
) -> dg.Output[list[dict[str, object]]]:
    from posttrain.platform.evals.cache import CACHE_FILE, EvalCache
    from posttrain.platform.evals.run import run_suite
    from posttrain.platform.evals.runners import GenerationSettings, runner_for
    from posttrain.platform.evals.suites import get_suite

    settings = load_settings(warehouse.home)
    configured = settings.evals.for_corpus(config.corpus)
    label = f"{config.corpus}@{config.version}"
    if not configured:
        context.log.info(f"no evals configured for corpus {config.corpus!r} (evals: in settings)")
        return dg.Output([], metadata={"corpus_version": dg.MetadataValue.text(label)})
    for entry in configured:  # a bad suite name fails before any model is asked
        for suite in entry.suites:
            get_suite(suite)
    wh = warehouse.open()
    cache = EvalCache(settings.home / CACHE_FILE)
    summaries = []
    for entry in configured:
        runner = runner_for(
            entry.model,
            settings=GenerationSettings(
                max_tokens=entry.max_tokens,
                timeout_s=entry.timeout_s,
                concurrency=entry.concurrency,
            ),
            cache=cache,
        )
        for suite in entry.suites:
            summary = run_suite(wh, suite, runner, corpus_version=label, limit=entry.limit)
            context.log.info(summary.line())
            summaries.append(summary)
    snapshot_id = summaries[-1].results_snapshot_id
    context.log_event(
        dg.AssetMaterialization(
            asset_key=table_key(TableName.EVAL_RESULTS),
            metadata={
                "corpus_version": dg.MetadataValue.text(label),
                **comparison_metadata(wh, snapshot_id),
            },
        )
    )
    rows = [s.as_dict() for s in summaries]
    return dg.Output(
        rows,
        metadata={
            "corpus_version": dg.MetadataValue.text(label),
            "scores": dg.MetadataValue.json(
                {f"{s.suite} · {s.model}": round(s.score, 4) for s in summaries}
            ),
            "errors": dg.MetadataValue.int(sum(s.errors for s in summaries)),
        },
    )


@dg.job(
    description="Summary statistics and the configured evals of a new corpus version.",
    tags={"posttrain/kind": "corpus-version"},
)
def corpus_version_job() -> None:
    corpus_version_stats()
    corpus_version_evals()


def run_key(corpus: str, version: str) -> str:
    """One run per corpus version, whatever the tick."""
    return f"{corpus}@{version}"


@dg.sensor(
    job=corpus_version_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "A new row in lineage.corpus_versions → a run of corpus_version_job for that version. "
        "Cursor: the snapshot id of lineage.corpus_versions seen last."
    ),
)
def corpus_versions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    wh = warehouse.open()
    current = wh.snapshot_id(TableName.LINEAGE_CORPUS_VERSIONS)
    seen = int(context.cursor) if context.cursor else None
    if current is None or current == seen:
        return dg.SkipReason(f"no new corpus version (lineage.corpus_versions at {current})")
    known = {e.event_key for e in events(wh, snapshot_id=seen)} if seen is not None else set()
    requests = [
        dg.RunRequest(
            run_key=run_key(e.corpus or "", e.version or ""),
            run_config=dg.RunConfig(
                ops={
                    op: VersionConfig(corpus=e.corpus or "", version=e.version or "")
                    for op in ("corpus_version_stats", "corpus_version_evals")
                }
            ),
            tags={"posttrain/corpus": e.corpus or "", "posttrain/version": e.version or ""},
        )
        for e in events(wh, snapshot_id=current)
        if e.event == CREATE and e.event_key not in known
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(current))
