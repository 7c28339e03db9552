"""Ingest: raw chat files → ``bronze.records``, and bronze payloads → canonical messages.

* :mod:`.formats` — the chat formats and how they are detected;
* :mod:`.readers` — streaming JSONL/Parquet files as raw records, checking a file;
* :mod:`.sources` — what to ingest (:class:`SourceSpec`, ``sources.yaml``);
* :mod:`.bronze` — appending to ``bronze.records`` once per record;
* :mod:`.parse` — payload → messages, and the :class:`ParseStep` silver starts with.
"""

from typing import TYPE_CHECKING

from posttrain.platform._lazy import lazy_exports

if TYPE_CHECKING:
    from posttrain.platform.ingest.bronze import (
        FileReport,
        IngestReport,
        ingest,
        plan_files,
        record_ids,
    )
    from posttrain.platform.ingest.formats import ChatFormat, detect_format, majority_format
    from posttrain.platform.ingest.parse import PARSED_RECORDS, ParseStep, parse_payload
    from posttrain.platform.ingest.readers import FileInspection, inspect_file, iter_raw_batches
    from posttrain.platform.ingest.sources import SourceSpec, load_sources

# Imported on first use, so the CLI can name the chat formats without pyiceberg.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "bronze": ["FileReport", "IngestReport", "ingest", "plan_files", "record_ids"],
        "formats": ["ChatFormat", "detect_format", "majority_format"],
        "parse": ["PARSED_RECORDS", "ParseStep", "parse_payload"],
        "readers": ["FileInspection", "inspect_file", "iter_raw_batches"],
        "sources": ["SourceSpec", "load_sources"],
    },
)

__all__ = [
    "PARSED_RECORDS",
    "ChatFormat",
    "FileInspection",
    "FileReport",
    "IngestReport",
    "ParseStep",
    "SourceSpec",
    "detect_format",
    "ingest",
    "inspect_file",
    "iter_raw_batches",
    "load_sources",
    "majority_format",
    "parse_payload",
    "plan_files",
    "record_ids",
]
