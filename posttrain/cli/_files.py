"""Input and output files of the standalone commands (`posttrain dedup`, `posttrain decontam`)."""

from __future__ import annotations

from pathlib import Path

from posttrain.cli._app import err_console
from posttrain.platform.errors import ConfigError
from posttrain.platform.table_files import JSONL_SUFFIXES, PARQUET_SUFFIXES, RecordsFile


def check_output(path: Path, input_path: Path) -> None:
    """Refuse an output that is not .parquet/.jsonl, is a folder, or is the input itself.

    Raises:
        ConfigError: naming ``--out`` and what to do instead.
    """
    if not path.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES):
        raise ConfigError(f"--out {path}: name a .parquet or .jsonl file")
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; name a .parquet or .jsonl file")
    if path.resolve() == input_path.resolve():
        raise ConfigError(f"--out {path} is the input file; name another file to write")


def print_skipped(records: RecordsFile) -> None:
    """One warning line naming the bad lines that were skipped (the first few), if any."""
    summary = records.skipped_summary()
    if summary:
        err_console.print(f"[bold yellow]warning:[/] {summary}", highlight=False, soft_wrap=True)
