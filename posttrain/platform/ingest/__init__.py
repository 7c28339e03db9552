"""Ingest: raw chat files → ``bronze.records`` (silver parses the payloads).

* :mod:`.formats` — the chat formats and how they are detected;
* :mod:`.readers` — streaming JSONL/Parquet files as raw records, checking a file;
* :mod:`.sources` — what to ingest (:class:`SourceSpec`, ``sources.yaml``);
* :mod:`.bronze` — appending to ``bronze.records`` once per record.
"""

from posttrain.platform.ingest.bronze import (
    FileReport,
    IngestReport,
    ingest,
    plan_files,
    record_ids,
)
from posttrain.platform.ingest.formats import ChatFormat, detect_format, majority_format
from posttrain.platform.ingest.readers import FileInspection, inspect_file, iter_raw_batches
from posttrain.platform.ingest.sources import SourceSpec, load_sources

__all__ = [
    "ChatFormat",
    "FileInspection",
    "FileReport",
    "IngestReport",
    "SourceSpec",
    "detect_format",
    "ingest",
    "inspect_file",
    "iter_raw_batches",
    "load_sources",
    "majority_format",
    "plan_files",
    "record_ids",
]
