"""``posttrain dedup``: find exact and near duplicates in a Parquet or JSONL file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from posttrain.cli._app import (
    RayAddressOption,
    WorkersOption,
    app,
    console,
    err_console,
    make_executor,
    options_config,
)
from posttrain.cli._files import check_output, print_skipped
from posttrain.platform.dedup import DedupConfig
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.messages import TextView

if TYPE_CHECKING:  # loaded by the command itself: `posttrain --help` needs none of them
    import pyarrow as pa

    from posttrain.platform.dedup import DedupResult
    from posttrain.platform.table_files import RecordsFile

OUTPUT_COLUMNS = ("cluster_id", "keep", "matched_id", "similarity", "reason")
# Text per fingerprint batch. Larger batches make numpy temporaries of tens of MB, which
# cost more in page faults (measured: 0.5 s of system time on 70 MB at 4,096 rows of 4 KB
# texts, 0.1 s at 1,024) than they save in per-batch overhead.
BATCH_TEXT_BYTES = 4 * 2**20
_DEFAULTS = DedupConfig()

HELP = (
    "Find exact and near-duplicate rows of a Parquet or JSONL file.\n\n"
    "Writes every input row to OUT (.parquet or .jsonl) with five more columns: "
    "[bold]cluster_id[/] (the id of the row kept for its cluster), [bold]keep[/] (true for "
    "one row per cluster), [bold]matched_id[/] (for the other rows: the kept row they "
    "duplicate), [bold]similarity[/] (estimated Jaccard similarity to it; 1.0 for exact "
    "duplicates) and [bold]reason[/] (exact_dup or near_dup).\n\n"
    "[bold]Exact duplicates[/] have the same text after normalization: Unicode NFKC, lower "
    "case, invisible characters removed, whitespace collapsed.\n\n"
    "[bold]Near duplicates[/] share at least --threshold of their word n-grams: the "
    "estimated Jaccard similarity of their sets of --ngram-word sequences, punctuation "
    f"ignored. At the default {_DEFAULTS.threshold}, 70 % of the distinct "
    f"{_DEFAULTS.ngram}-word sequences of two texts together occur in both; higher is "
    "stricter. Similarity is estimated from --num-perm MinHash slots; LSH with --bands "
    "bands finds candidate pairs and every candidate is checked against the threshold.\n\n"
    "The row kept in each cluster is the one with the smallest id (--id-column; without "
    "one, the row number, so the first occurrence is kept).\n\n"
    "[bold]Example:[/] posttrain dedup chats.jsonl --text-view prompt --out deduped.parquet"
)


def _skip_pandas_probe() -> None:
    """Spare the command pyarrow's import of pandas (about 0.5 s of its start-up).

    The first time pyarrow converts anything (``pa.array``, a Python scalar), it imports
    pandas only to ask whether the object is a pandas one; nothing this command converts
    is. That first probe is made to find no pandas: pyarrow then answers "not pandas"
    without importing it, and still imports pandas later if it is really needed
    (``to_pandas`` retries). ``Array.to_numpy`` would import it anyway: dedup avoids it
    (:mod:`posttrain.platform.dedup._numpy`).
    """
    import sys

    import numpy as np
    import pyarrow as pa

    class NoPandas:
        def find_spec(self, name: str, *_: object) -> None:
            if name == "pandas":
                raise ImportError("pandas is not needed here")

    if "pandas" in sys.modules:
        return
    blocker = NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        # Both converters probe: numpy's (in Python) and Python objects' (in C++, once).
        pa.array(np.zeros(1, dtype=np.int64))
        pa.scalar("")  # type inference probes too
    finally:
        sys.meta_path.remove(blocker)


def _record_ids(records: RecordsFile, id_column: str | None) -> pa.Array:
    """String ids: from ``id_column``, or the zero-padded line (JSONL) or row number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = records.table
    if id_column is None:
        width = max(6, len(str(pc.max(records.numbers).as_py() or 0)))
        numbers = pc.cast(records.numbers, pa.string())
        return pc.binary_join_element_wise("row-", pc.utf8_lpad(numbers, width, "0"), "")
    if id_column not in table.column_names:
        raise InputFormatError(
            records.path, f"an id column {id_column!r}", found=f"columns {table.column_names}"
        )
    if id_column in records.mixed:
        raise InputFormatError(
            records.path,
            f"id column {id_column!r} to hold one type",
            found=records.mixed[id_column].describe(),
        )
    if pa.types.is_nested(table.schema.field(id_column).type):
        raise InputFormatError(
            records.path,
            f"id column {id_column!r} of strings or numbers",
            found=str(table.schema.field(id_column).type),
        )
    ids = table[id_column].combine_chunks().cast(pa.string())
    if not ids.null_count and pc.count_distinct(ids).as_py() == len(ids):
        return ids  # the common case, without group_by (its engine imports pandas: 0.5 s)
    counts = pa.table({"id": ids}).group_by("id").aggregate([("id", "count")])
    repeated = counts.filter(pc.greater(counts["id_count"], 1))
    if repeated.num_rows or ids.null_count:
        value = repeated["id"][0].as_py() if repeated.num_rows else None
        at = records.numbers.filter(pc.equal(ids, value) if value is not None else pc.is_null(ids))
        unit = "line" if records.path.suffix.lower() != ".parquet" else "row"
        where = ", ".join(str(n) for n in at.to_pylist()[:5])
        raise InputFormatError(
            records.path,
            f"a unique value of --id-column {id_column!r} on every row",
            found=f"{value!r} on {unit}s {where}"
            + (f" ({repeated.num_rows:,} values repeat)" if repeated.num_rows > 1 else ""),
        )
    return ids


def _batch_rows(texts: pa.ChunkedArray) -> int:
    """Rows per batch so that a batch holds about :data:`BATCH_TEXT_BYTES` of text."""
    per_row = max(texts.nbytes / max(len(texts), 1), 1.0)
    return max(64, min(4096, int(BATCH_TEXT_BYTES / per_row)))


def _text_column(records: RecordsFile, requested: str | None) -> str:
    from posttrain.platform.table_files import check_text_column

    names = records.table.column_names
    for name in [requested] if requested else ["messages", "text"]:
        if name in names:
            check_text_column(records, name)
            return name
    if requested is None and records.messages is not None:
        return "messages"  # derived from the file's chat format
    expected = (
        f"a column {requested!r}"
        if requested
        else "a 'messages' or 'text' column (or --text-column)"
    )
    raise InputFormatError(records.path, expected, found=f"columns {names}")


def _annotated(records: pa.Table, ids: pa.Array, result: DedupResult) -> pa.Table:
    """The input rows, in input order, with the dedup columns appended."""
    import pyarrow.compute as pc

    clash = [name for name in OUTPUT_COLUMNS if name in records.column_names]
    if clash:
        raise ConfigError(f"the input already has column(s) {', '.join(clash)}; rename them first")
    assignments = result.assignments
    ordered = assignments.take(pc.index_in(ids, value_set=assignments["record_id"]))
    for name in OUTPUT_COLUMNS:
        records = records.append_column(name, ordered[name])
    return records


def _print_summary(result: DedupResult, seconds: float) -> None:
    from rich.table import Table as RichTable

    stats = result.stats
    view = RichTable(header_style="bold", show_header=False)
    view.add_column("", justify="left")
    view.add_column("", justify="right")
    for label, value in (
        ("rows", stats.rows),
        ("kept", stats.kept),
        ("exact duplicates", stats.exact_duplicates),
        ("near duplicates", stats.near_duplicates),
        ("duplicate clusters", stats.clusters),
        ("rows without text", stats.without_text),
        ("LSH candidate pairs", stats.candidate_pairs),
        ("verified near-duplicate pairs", stats.verified_pairs),
    ):
        view.add_row(label, f"{value:,}")
    console.print(view)
    rate = stats.rows / seconds if seconds > 0 else float("inf")
    console.print(
        f"{stats.rows - stats.kept:,} of {stats.rows:,} rows are duplicates "
        f"({(stats.rows - stats.kept) / max(stats.rows, 1):.2%}); "
        f"{seconds:.1f} s, {rate:,.0f} rows/s"
    )


@app.command(help=HELP)
def dedup(
    context: typer.Context,
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Parquet or JSONL file.")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .parquet or .jsonl.")],
    text_column: Annotated[
        str | None,
        typer.Option(
            help="Column compared: a string column, or a `messages` list (see --text-view). "
            "Default: `messages`, else `text`.",
            show_default=False,
        ),
    ] = None,
    text_view: Annotated[
        TextView,
        typer.Option(
            help="Turns of a messages column compared: all, prompt (system/user/tool) or response.",
        ),
    ] = _DEFAULTS.text_view,
    id_column: Annotated[
        str | None,
        typer.Option(
            help="Unique row id; the smallest id of a cluster is kept. Default: `record_id` if "
            "present, else the row number (the first occurrence is kept).",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            help="Minimum estimated Jaccard similarity of the word n-gram sets of near "
            "duplicates, in (0, 1].",
        ),
    ] = _DEFAULTS.threshold,
    ngram: Annotated[int, typer.Option(help="Words per n-gram (shingle).")] = _DEFAULTS.ngram,
    num_perm: Annotated[
        int, typer.Option(help="MinHash signature slots (more: finer estimate).")
    ] = (_DEFAULTS.num_perm),
    bands: Annotated[
        int | None,
        typer.Option(
            help="LSH bands; must divide --num-perm. Default: num_perm / 4 (32 for 128).",
            show_default=False,
        ),
    ] = None,
    drop_whole_cluster: Annotated[
        bool,
        typer.Option(
            help="Keep no row of a duplicate cluster (all get keep=false).",
        ),
    ] = False,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    import gc

    # The command makes no reference cycles worth collecting, while its imports and the
    # signature rows (lists of ints from rensa) would trigger collections that walk every
    # live object, in the GIL, the fingerprint threads waiting (about 0.08 s in all).
    if gc.isenabled():
        gc.disable()
        context.call_on_close(gc.enable)
    # Heavy imports here, not at the top: they would slow every other command's start-up.
    import pyarrow as pa

    _skip_pandas_probe()

    from concurrent.futures import ThreadPoolExecutor

    from posttrain.platform.table_files import read_records, write_table_file

    config = options_config(
        DedupConfig,
        "dedup",
        threshold=threshold,
        ngram=ngram,
        num_perm=num_perm,
        bands=bands,
        text_view=text_view,
        drop_whole_cluster=drop_whole_cluster,
    )
    check_output(out, input_path)
    # Arrow reads the file without the GIL: the dedup modules (numpy, rensa...) import
    # meanwhile, instead of before or after (a tenth of a second on 70 MB).
    with ThreadPoolExecutor(1, thread_name_prefix="posttrain-read") as pool:
        reading = pool.submit(read_records, input_path)
        from posttrain.cli._progress import rich_progress
        from posttrain.platform.dedup import deduplicate
        from posttrain.platform.settings import load_settings  # noqa: F401  (make_executor's)

        read = reading.result()
    print_skipped(read)
    records = read.table
    id_column = id_column or ("record_id" if "record_id" in records.column_names else None)
    column = _text_column(read, text_column)
    ids = _record_ids(read, id_column)
    texts = records[column] if column in records.column_names else read.messages
    candidates = pa.table({"record_id": ids, column: texts})
    start = time.perf_counter()
    with rich_progress(err_console) as progress:
        executor = make_executor(
            workers, ray_address, progress, input_bytes=candidates[column].nbytes
        )
        try:
            result = deduplicate(
                candidates,
                config,
                executor,
                text_column=column,
                batch_rows=_batch_rows(candidates[column]),
                name=str(input_path),
            )
        finally:
            executor.close()
    seconds = time.perf_counter() - start
    write_table_file(_annotated(records, ids, result), out)
    _print_summary(result, seconds)
    console.print(f"wrote {records.num_rows:,} rows to {out}")
