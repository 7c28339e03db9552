"""Export one pinned table snapshot as files trainers read with no conversion step.

``posttrain export gold.sft@4242 --format jsonl --out exports/sft`` writes

    exports/sft/train-00000-of-00001.jsonl   one JSON object per row, nested messages kept
    exports/sft/manifest.json                table, snapshot id, rows, schema, sha256 per file

The data file is named like a Hugging Face Hub shard, so ``datasets.load_dataset("json",
data_dir=...)`` picks the ``train`` split and skips the manifest; TRL and Axolotl load it as
they load any local dataset. The same snapshot always exports to the same bytes: rows in
table order, fixed Parquet writer settings and row-group sizes, no timestamps anywhere.

Example:
    >>> export_table(warehouse, "gold.sft", Path("out"), "parquet")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.errors import ConfigError, ExportError
from posttrain.platform.json_values import json_default
from posttrain.platform.refs import PinnedSnapshot, TableRef, arrow_schema, resolve, stream_batches
from posttrain.platform.schemas import column_doc
from posttrain.platform.warehouse import Warehouse

ExportFormat = Literal["parquet", "jsonl"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
MANIFEST = "manifest.json"
MANIFEST_KIND = "posttrain.export/v1"

# Fixed so the bytes depend on the rows only, never on how the scan happened to batch them.
ROWS_PER_ROW_GROUP = 2048
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_size": 1 << 20,
}
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportedFile:
    """One data file of an export, relative to the export folder."""

    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    """What ``manifest.json`` records: enough to check the files and trace them back."""

    kind: str
    table: str
    ref: str | None
    snapshot_id: int
    format: str
    rows: int
    schema: list[dict[str, Any]]
    files: list[ExportedFile]
    lineage: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def data_file_name(fmt: ExportFormat, index: int = 0, count: int = 1) -> str:
    """Hub-style shard name, e.g. ``train-00000-of-00001.jsonl``."""
    return f"train-{index:05d}-of-{count:05d}.{fmt}"


def export_table(
    warehouse: Warehouse,
    table_ref: TableRef | str,
    out: Path,
    fmt: str,
    *,
    force: bool = False,
) -> ExportManifest:
    """Write the snapshot ``table_ref`` pins to ``out`` as ``fmt`` files plus a manifest.

    Rows stream from Iceberg batch by batch, so memory stays flat whatever the table's size.

    Args:
        warehouse: where the table lives.
        table_ref: ``TABLE``, ``TABLE@SNAPSHOT_ID`` or ``TABLE@TAG`` (see :mod:`refs`).
        out: the export folder; created if missing.
        fmt: ``parquet`` or ``jsonl``.
        force: replace a previous export in ``out`` (its listed files and manifest); other
            files there are left alone.

    Raises:
        ConfigError: unknown format.
        TableNotFoundError, SnapshotNotFoundError: the reference resolves to nothing.
        ExportError: ``out`` is a file, is not empty (without ``force``), or lies inside the
            warehouse.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not an export format; expected one of {FORMATS}")
    pinned = resolve(warehouse, table_ref)
    _check_destination(out, warehouse, pinned, force=force)
    out.mkdir(parents=True, exist_ok=True)
    if force:
        _remove_previous_export(out)

    schema = arrow_schema(pinned)
    name = data_file_name(fmt)  # type: ignore[arg-type]
    partial = out / f".{name}.partial"
    batches = stream_batches(pinned)
    try:
        if fmt == "parquet":
            rows = _write_parquet(batches, schema, partial)
        else:
            rows = _write_jsonl(batches, partial)
        os.replace(partial, out / name)
    finally:
        partial.unlink(missing_ok=True)
    manifest = ExportManifest(
        kind=MANIFEST_KIND,
        table=pinned.name,
        ref=pinned.ref,
        snapshot_id=pinned.snapshot_id,
        format=fmt,
        rows=rows,
        schema=[_describe(field) for field in schema],
        files=[_describe_file(out, name, rows)],
        lineage=pinned.lineage(),
    )
    # Written last: a folder with a manifest holds a complete export.
    (out / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of the export in ``out``, as JSON."""
    loaded: dict[str, Any] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    return loaded


# -- destination --------------------------------------------------------------------------


def _local_folder(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://")).resolve()
    if "://" in uri:
        return None  # object storage: a local --out cannot be inside it
    return Path(uri).resolve()


def _check_destination(
    out: Path, warehouse: Warehouse, pinned: PinnedSnapshot, *, force: bool
) -> None:
    target = out.resolve()
    for uri in (warehouse.settings.warehouse, pinned.table.location()):
        folder = _local_folder(uri)
        if folder is not None and (target == folder or folder in target.parents):
            raise ExportError(
                f"--out {out}: inside the warehouse folder {folder}; exports go outside it"
            )
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is a file; expected a folder (new or empty)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(
            f"--out {out}: not empty; choose a new folder, or pass --force to replace the "
            "export in it"
        )


def _remove_previous_export(out: Path) -> None:
    manifest = out / MANIFEST
    listed: list[str] = []
    if manifest.is_file():
        try:
            listed = [entry["path"] for entry in read_manifest(out).get("files", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            listed = []
    for name in {*listed, *(data_file_name(fmt) for fmt in FORMATS)}:  # type: ignore[arg-type]
        path = out / name
        # A manifest could name anything: only files directly in ``out`` are removed.
        if path.parent == out and path.is_file():
            path.unlink()
    manifest.unlink(missing_ok=True)


# -- writers ------------------------------------------------------------------------------


def _row_groups(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Re-cut a batch stream into tables of exactly ``ROWS_PER_ROW_GROUP`` rows (the last
    one shorter), holding at most one row group in memory."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= ROWS_PER_ROW_GROUP:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, ROWS_PER_ROW_GROUP)
            rest = table.slice(ROWS_PER_ROW_GROUP)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending, schema=schema)


def _write_parquet(batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema, **PARQUET_OPTIONS) as writer:
        for group in _row_groups(batches, schema):
            writer.write_table(group, row_group_size=ROWS_PER_ROW_GROUP)
            rows += group.num_rows
    return rows


def _write_jsonl(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as sink:
        for batch in batches:
            lines = [
                json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=json_default)
                for row in batch.to_pylist()
            ]
            if lines:
                sink.write("\n".join(lines) + "\n")
            rows += len(lines)
    return rows


def _describe(field: pa.Field) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": field.name,
        "type": str(field.type),
        "nullable": field.nullable,
    }
    if doc := column_doc(field):
        described["doc"] = doc
    return described


def _describe_file(out: Path, name: str, rows: int) -> ExportedFile:
    digest = hashlib.sha256()
    path = out / name
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return ExportedFile(path=name, rows=rows, bytes=path.stat().st_size, sha256=digest.hexdigest())
