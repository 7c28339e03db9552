"""Ingest: raw chat files → ``bronze.records`` (silver parses the payloads).

* :mod:`.formats` — the chat formats and how they are detected;
* :mod:`.readers` — streaming JSONL (also .gz/.zst), JSON arrays, Parquet and Arrow files
  as raw records, checking a file;
* :mod:`.folders` — a folder's input files (recursively, Hugging Face layouts and splits)
  and the files skipped;
* :mod:`.sources` — what to ingest (:class:`SourceSpec`, ``sources.yaml``);
* :mod:`.source_metadata` — workspace/license/description once per source, correctable;
* :mod:`.bronze` — appending to ``bronze.records`` once per record.
"""

from posttrain.platform.ingest.bronze import (
    FileReport,
    IngestReport,
    RecordIdentity,
    ingest,
    plan_files,
    record_ids,
)
from posttrain.platform.ingest.folders import FolderScan, InputFile, SkippedFile, scan_inputs
from posttrain.platform.ingest.formats import ChatFormat, detect_format, majority_format
from posttrain.platform.ingest.readers import FileInspection, inspect_file, iter_raw_batches
from posttrain.platform.ingest.source_metadata import (
    SourceMetadata,
    apply_source_metadata,
    record_sources,
    set_source_metadata,
    source_metadata,
)
from posttrain.platform.ingest.sources import SourceSpec, load_sources

__all__ = [
    "ChatFormat",
    "FileInspection",
    "FileReport",
    "FolderScan",
    "IngestReport",
    "InputFile",
    "RecordIdentity",
    "SkippedFile",
    "SourceMetadata",
    "SourceSpec",
    "apply_source_metadata",
    "detect_format",
    "ingest",
    "inspect_file",
    "iter_raw_batches",
    "load_sources",
    "majority_format",
    "plan_files",
    "record_ids",
    "record_sources",
    "scan_inputs",
    "set_source_metadata",
    "source_metadata",
]
