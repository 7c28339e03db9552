"""``posttrain decontam``: find benchmark text in a file of training records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table as RichTable

from posttrain.cli._app import (
    HomeOption,
    RayAddressOption,
    WorkersOption,
    app,
    console,
    err_console,
    make_executor,
    open_warehouse,
    options_config,
)
from posttrain.cli._files import check_output, print_skipped
from posttrain.cli._progress import rich_progress
from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    ReferenceSet,
    build_index,
    find_contaminated,
    reference_from_benchmark,
    reference_from_file,
    reference_from_table,
    summarize_contamination,
)
from posttrain.platform.errors import ConfigError, TableNotFoundError
from posttrain.platform.evals import BENCHMARKS
from posttrain.platform.messages import TextView
from posttrain.platform.table_files import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    check_text_column,
    read_records,
    write_table_file,
)

INPUT_ROW = "input_row"
_DEFAULTS = DecontamConfig()


def _reference(spec: str, home: Path | None) -> ReferenceSet:
    """A benchmark file, a shipped benchmark name, or an ``eval.*`` table in the warehouse."""
    if spec.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES):
        return reference_from_file(spec)
    if spec in BENCHMARKS:
        return reference_from_benchmark(spec)
    warehouse = open_warehouse(home)
    if not warehouse.exists(spec):
        try:
            warehouse.table(spec)
        except TableNotFoundError as exc:
            raise ConfigError(
                f"{exc}; --against also takes a benchmark file (.parquet, .jsonl) or a shipped "
                f"benchmark name: {', '.join(sorted(BENCHMARKS))}"
            ) from None
    return reference_from_table(warehouse, spec)


def _print_summary(found: pa.Table, total: int) -> None:
    summary = summarize_contamination(found, total)
    view = RichTable(header_style="bold")
    for column in ("benchmark", "contaminated rows", "items matched", "matching n-grams"):
        view.add_column(column, justify="left" if column == "benchmark" else "right")
    for entry in summary.benchmarks:
        view.add_row(
            entry.benchmark, f"{entry.records:,}", f"{entry.items:,}", f"{entry.matched_ngrams:,}"
        )
    if summary.benchmarks:
        console.print(view)
    console.print(summary.describe())


@app.command()
def decontam(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Records to check: Parquet or JSONL with a `messages` column or a text column.",
        ),
    ],
    against: Annotated[
        list[str],
        typer.Option(
            "--against",
            help=(
                "Benchmark to compare with: an eval table in the warehouse (eval.humaneval), a "
                "shipped benchmark by name (humaneval, no warehouse needed) or a Parquet/JSONL "
                "file of items (id from item_id/task_id/id, text from its string columns). "
                "Repeat for several."
            ),
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the contaminated rows with their evidence here (.parquet or .jsonl)."
        ),
    ] = None,
    ngram: Annotated[int, typer.Option(help="Words per n-gram.")] = _DEFAULTS.ngram,
    min_matches: Annotated[
        int,
        typer.Option(help="Distinct n-grams shared with one item that make a row contaminated."),
    ] = _DEFAULTS.min_matches,
    text_column: Annotated[
        str | None, typer.Option(help="Check this string column instead of `messages`.")
    ] = None,
    text_view: Annotated[
        TextView,
        typer.Option(
            help="Turns of `messages` to check: all, prompt (system/user/tool) or response."
        ),
    ] = _DEFAULTS.text_view,
    workers: WorkersOption = 1,
    ray_address: RayAddressOption = None,
    home: HomeOption = None,
) -> None:
    """Find training records that contain benchmark text (n-gram overlap).

    Text is compared after NFKC normalization and case folding, ignoring punctuation, \
quotes, whitespace and indentation. Prints the contaminated rows per benchmark; with \
--out, writes each contaminated row with `benchmark`, `benchmark_item_id`, \
`matched_ngrams`, `detail` and its 1-based `input_row` (the line of a JSONL file). Lines \
that cannot be read are skipped and listed.

    Example: posttrain decontam chats.jsonl --against humaneval --out hits.parquet
    """
    config = options_config(
        DecontamConfig, "decontamination", ngram=ngram, min_matches=min_matches, text_view=text_view
    )
    if out is not None:
        check_output(out, input_path)
    references = [_reference(spec, home) for spec in against]
    read = read_records(input_path)
    print_skipped(read)
    records = read.table
    if text_column is not None and text_column in records.column_names:
        check_text_column(read, text_column)
    elif text_column is None and "messages" in records.column_names:
        check_text_column(read, "messages")
    if INPUT_ROW not in records.column_names:
        records = records.append_column(INPUT_ROW, read.numbers)
    derived = text_column is None and "messages" not in records.column_names
    if derived and read.messages is not None:
        records = records.append_column("messages", read.messages)  # from the chat format
    step = DecontamStep(build_index(references, config), config, text_column=text_column)
    with rich_progress(err_console) as progress:
        executor = make_executor(workers, ray_address, progress)
        try:
            found = find_contaminated(records, step, executor)
        finally:
            executor.close()
    if derived and "messages" in found.column_names:
        found = found.drop_columns(["messages"])
    _print_summary(found, records.num_rows)
    if out is not None:
        write_table_file(found, out)
        console.print(f"wrote {found.num_rows:,} contaminated rows to {out}")
