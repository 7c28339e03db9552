"""``posttrain eval run|compare|suites``: score models on the eval suites, compare runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table as RichTable

from posttrain.cli._app import HomeOption, app, console, open_warehouse
from posttrain.platform.errors import ConfigError

eval_app = typer.Typer(
    name="eval",
    help=(
        "Run eval suites on a model and compare the scores across checkpoints and corpus "
        "versions.\n\n"
        "A model is [bold]openai:BASE_URL#MODEL[/] (any OpenAI-compatible endpoint; the "
        "token, if any, from $OPENAI_API_KEY) or a local checkpoint folder. Every item's "
        "output, score, latency or error goes to eval.results; outputs are cached under "
        "$POSTTRAIN_HOME, so a re-run asks the model nothing it has answered.\n\n"
        "[bold]Example:[/] posttrain eval run humaneval --model "
        "openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b --limit 20"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(eval_app)


@eval_app.command("run")
def run(
    suite: Annotated[str, typer.Argument(help="Suite name (see `posttrain eval suites`).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="openai:BASE_URL#MODEL, or a checkpoint folder (local:PATH).",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="A registered checkpoint (lineage.checkpoints) instead of --model: its "
            "folder is run, and its id and experiment are recorded with the results.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N items (item id order).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Experiment id to record.")
    ] = None,
    corpus_version: Annotated[
        str | None, typer.Option("--corpus-version", help="Corpus version to record, e.g. sft@v3.")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Output token limit per item.")] = 512,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds per request.")] = 60.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries on 429, 5xx and connection errors.")
    ] = 4,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ask the model even for cached items.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Score MODEL on SUITE and append one eval.results row per item.

    Items the model could not answer (refused connection, timeout, malformed
    response, output cut at --max-tokens) are recorded with their error and
    score 0. Exits 1 when every item failed.
    """
    from posttrain.platform.evals.cache import CACHE_FILE, EvalCache
    from posttrain.platform.evals.run import run_suite
    from posttrain.platform.evals.runners import GenerationSettings, runner_for
    from posttrain.platform.evals.suites import get_suite
    from posttrain.platform.settings import load_settings

    get_suite(suite)  # an unknown suite fails before the model is touched
    if (model is None) == (checkpoint is None):
        raise ConfigError("give either --model or --checkpoint (see `posttrain eval run --help`)")
    warehouse = open_warehouse(home)
    if checkpoint is not None:
        from posttrain.platform.experiments.manifest import get_checkpoint

        registered = get_checkpoint(warehouse, checkpoint)
        model = f"local:{registered.path}"
        experiment = experiment or registered.experiment_id
    settings = GenerationSettings(
        max_tokens=max_tokens, timeout_s=timeout, concurrency=concurrency, retries=retries
    )
    cache = None if no_cache else EvalCache(load_settings(home).home / CACHE_FILE)
    assert model is not None
    runner = runner_for(model, settings=settings, cache=cache, use_cache=not no_cache)
    summary = run_suite(
        warehouse,
        suite,
        runner,
        experiment_id=experiment,
        corpus_version=corpus_version,
        limit=limit,
        checkpoint_id=checkpoint,
    )
    if as_json:
        console.print_json(json.dumps(summary.as_dict(), default=str))
    else:
        console.print(summary.line(), highlight=False, soft_wrap=True)
        if summary.errors:
            console.print(
                f"[yellow]{summary.errors} items failed[/]; see them with: posttrain query "
                f"\"SELECT item, error FROM eval.results WHERE run_id = '{summary.run_id}' "
                'AND error IS NOT NULL"',
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(1 if summary.items and summary.errors == summary.items else 0)


@eval_app.command("compare")
def compare(
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="Only this suite (repeatable).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Only models containing this text (repeatable)."),
    ] = None,
    latest: Annotated[
        bool,
        typer.Option(
            "--latest", help="Newest run per suite, model, experiment and corpus version only."
        ),
    ] = False,
    by_version: Annotated[
        bool,
        typer.Option(
            "--by-version",
            help="One row per suite and model, one column per corpus version (newest run).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Metrics across checkpoints and corpus versions: one row per eval run."""
    from posttrain.platform.evals.compare import NO_VERSION, pivot
    from posttrain.platform.evals.compare import compare as compare_runs

    runs = compare_runs(open_warehouse(home), suites=suite, models=model, latest=latest)
    if by_version and not as_json and runs:
        matrix = pivot(runs)
        grid = RichTable(title="score per corpus version (newest run)")
        for column in ("suite", "metric", "model"):
            grid.add_column(column)
        for version in matrix.versions:
            grid.add_column(version, justify="right")
        for suite_name, metric, model_name, scores in matrix.rows:
            cells = [f"{scores[v]:.3f}" if v in scores else "" for v in matrix.versions]
            grid.add_row(suite_name, metric, model_name, *cells)
        console.print(grid)
        return
    if as_json:
        console.print_json(json.dumps([run.__dict__ for run in runs], default=str), highlight=False)
        return
    if not runs:
        console.print("no eval runs yet: posttrain eval run SUITE --model SPEC")
        return
    table = RichTable(title="eval runs (eval.results)")
    for column in ("suite", "metric", "score", "items", "errors", "model", "experiment"):
        table.add_column(
            column, justify="right" if column in {"score", "items", "errors"} else "left"
        )
    table.add_column("corpus version")
    table.add_column("run")
    for r in runs:
        table.add_row(
            r.suite,
            r.metric,
            f"{r.score:.3f}",
            str(r.items),
            f"[red]{r.errors}[/]" if r.errors else "0",
            r.model,
            r.experiment_id or NO_VERSION,
            r.corpus_version or NO_VERSION,
            r.run_id,
        )
    console.print(table)


@eval_app.command("suites")
def suites() -> None:
    """The registered eval suites: table, metric and decontamination columns."""
    from posttrain.platform.evals.suites import SUITES

    table = RichTable(title="eval suites")
    for column in ("suite", "table", "metric", "decontaminated columns"):
        table.add_column(column)
    for s in SUITES.values():
        table.add_row(s.name, s.table, s.metric, ", ".join(s.benchmark.text_columns))
    console.print(table)
