"""``bronze/records``: raw input records exactly as received, append-only; and
``lineage/sources``: each source's license, workspace and description, once."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from posttrain.assets._support import (
    WRITER_POOLS,
    integrity_check_specs,
    table_key,
    table_metadata,
    table_result,
    table_spec,
)
from posttrain.platform.ingest.bronze import IngestReport, ingest
from posttrain.platform.ingest.sources import load_sources
from posttrain.platform.progress import LogProgress
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import project_root
from posttrain.resources import WarehouseResource

TABLE = TableName.BRONZE_RECORDS
SOURCES = TableName.LINEAGE_SOURCES


class IngestSourcesConfig(dg.Config):
    """Which files to ingest: a sources YAML listing path, source, workspace, license, format."""

    sources_file: str = Field(
        default="data/sources.yaml",
        description="Sources YAML, relative to the project root unless absolute.",
    )
    rollouts_file: str = Field(
        default="data/rollouts.yaml",
        description="Sources YAML of RL rollouts ingested beside them (bronze format "
        "rollout, read by silver/rollouts); empty for none.",
    )


def _project_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else project_root() / path


def _files_table(report: IngestReport) -> str:
    lines = [
        "| file | source | format | rows | added | already present |",
        "|---|---|---|---|---|---|",
    ]
    for file in report.files:
        lines.append(
            f"| {Path(file.path).name} | {file.source} | {file.format} | {file.rows_read:,} "
            f"| {file.rows_added:,} | {file.already_present:,} |"
        )
    return "\n".join(lines)


@dg.multi_asset(
    pool=WRITER_POOLS["bronze"],
    specs=[table_spec(TABLE, group="bronze"), table_spec(SOURCES, group="bronze")],
    check_specs=[*integrity_check_specs(TABLE), *integrity_check_specs(SOURCES)],
    # Ingest always records its sources; selecting bronze alone just leaves that
    # materialization unreported.
    can_subset=True,
)
def bronze_records(
    context: dg.AssetExecutionContext, config: IngestSourcesConfig, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Ingest every file listed in the sources YAML; re-ingesting a file adds nothing.

    All files are checked (readable, known chat format) before the first write, so a bad
    file fails the run with its name and line and leaves bronze untouched.
    """
    specs = [
        spec
        for name in (config.sources_file, config.rollouts_file)
        if name
        for spec in load_sources(_project_path(name))
    ]
    wh = warehouse.open()
    input_bytes = sum(path.stat().st_size for spec in specs for path in spec.files())
    report = ingest(wh, specs, progress=LogProgress(context.log.info))
    context.log.info(
        f"ingested {report.rows_read:,} records from {len(report.files)} files: "
        f"{report.rows_added:,} new, {report.rows_read - report.rows_added:,} already present"
    )
    metadata = table_metadata(
        wh,
        TABLE,
        snapshot_id=report.snapshot_id,
        committed=report.rows_added > 0,
        seconds=report.elapsed_s,
        rows_processed=report.rows_read,
        bytes_processed=input_bytes,
        extra={
            "rows_read": report.rows_read,
            "rows_added": report.rows_added,
            "batch_id": report.batch_id,
            "files": dg.MetadataValue.md(_files_table(report)),
        },
    )
    # Ingest records each new or changed source here first; a correction made later with
    # `posttrain sources set` is a commit of its own.
    sources_snapshot = wh.snapshot_id(SOURCES)
    sources = table_metadata(
        wh,
        SOURCES,
        snapshot_id=sources_snapshot,
        committed=bool(report.sources_updated),
        seconds=report.elapsed_s,
        rows_processed=len(specs),
        bytes_processed=0,
        extra={"sources_updated": dg.MetadataValue.json(report.sources_updated)},
    )
    selected = context.selected_asset_keys
    if table_key(TABLE) in selected:
        yield table_result(wh, TABLE, report.snapshot_id, metadata=metadata)
    if table_key(SOURCES) in selected:
        yield table_result(wh, SOURCES, sources_snapshot, metadata=sources)
